"""credits-exporter: a Prometheus exporter for prepaid SaaS API credit balances."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credits-exporter")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
