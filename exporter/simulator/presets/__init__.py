"""The APIs the exporter's http_json presets read, one module each (named like the preset),
with their documented answer shapes, auth and error bodies. No burn: tests set the values they
expect."""
