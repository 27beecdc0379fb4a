"""What the deployment packages share: the ripcord binary for an architecture (built, checked and stripped), the
configuration with its policy files and their code compiled ahead of time, and reproducible archives.

Used by scripts/package-lambda (bootstrap.zip) and scripts/package-image (an OCI image layout). Python standard
library only, so packaging needs nothing beyond what building ripcord needs.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Amazon Linux 2023 (the Lambda runtime provided.al2023) has glibc 2.34: a binary may not need anything newer.
GLIBC_MAX = (2, 34)
ARCHES = {
    # name: (Rust target, ELF e_machine, uname -m)
    "x86_64": ("x86_64-unknown-linux-gnu", 0x3E, "x86_64"),
    "arm64": ("aarch64-unknown-linux-gnu", 0xB7, "aarch64"),
}


class PackagingError(Exception):
    pass


def log(message):
    print(f"package: {message}", file=sys.stderr)


def host_arch():
    machine = platform.machine()
    for name, (_, _, uname) in ARCHES.items():
        if machine == uname:
            return name
    raise PackagingError(f"unsupported build machine architecture {machine}")


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def build(arch):
    """Builds ripcord for `arch` in release mode and returns the binary. The host architecture builds with cargo
    (the same build the tests use); another architecture with cargo-zigbuild against glibc 2.34."""
    triple = ARCHES[arch][0]
    if arch == host_arch():
        log(f"building ripcord for {arch} (cargo build --release)")
        run(["cargo", "build", "--release", "--locked", "-p", "ripcord"], cwd=ROOT)
        return target_dir() / "release" / "ripcord"
    venv = ROOT / ".tools" / "venv"
    zigbuild = venv / "bin" / "cargo-zigbuild"
    if not zigbuild.exists():
        log("installing cargo-zigbuild and zig (PyPI) into .tools/venv for the cross build")
        run([str(venv / "bin" / "pip"), "install", "--quiet", "cargo-zigbuild", "ziglang"])
    run(["rustup", "target", "add", triple])
    log(f"building ripcord for {arch} ({triple}, glibc 2.34) with cargo zigbuild")
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}")
    run([str(zigbuild), "zigbuild", "--release", "--locked", "-p", "ripcord", "--target", f"{triple}.2.34"],
        cwd=ROOT, env=env)
    return target_dir() / triple / "release" / "ripcord"


def run(args, **kwargs):
    try:
        return subprocess.run(args, check=True, **kwargs)
    except FileNotFoundError as e:
        raise PackagingError(f"cannot run {args[0]}: {e}") from e
    except subprocess.CalledProcessError as e:
        raise PackagingError(f"{' '.join(map(str, args))} failed with exit code {e.returncode}") from e


def check_binary(binary, arch):
    """Refuses a binary that is not an ELF executable for `arch` or needs a glibc newer than Amazon Linux 2023's."""
    data = Path(binary).read_bytes()
    if data[:4] != b"\x7fELF":
        raise PackagingError(f"{binary} is not a Linux (ELF) executable")
    machine = int.from_bytes(data[18:20], "little")
    if machine != ARCHES[arch][1]:
        found = next((n for n, (_, m, _) in ARCHES.items() if m == machine), f"e_machine {machine:#x}")
        raise PackagingError(f"{binary} is built for {found}, not {arch}")
    needed = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)\x00", data)}
    newest = max(needed, default=(0, 0))
    if newest[:2] > GLIBC_MAX:
        raise PackagingError(
            f"{binary} needs glibc {'.'.join(map(str, newest))}, newer than Amazon Linux 2023's 2.34: build it "
            "with scripts/package-lambda (cargo zigbuild pins glibc 2.34)")
    return newest


def strip(binary, out):
    """Copies `binary` to `out` without symbols or debug info (314 MB -> about 50 MB)."""
    for tool in ("strip", "llvm-strip", "llvm-strip-14"):
        if shutil.which(tool):
            result = subprocess.run([tool, "-o", str(out), str(binary)], capture_output=True, text=True)
            if result.returncode == 0:
                os.chmod(out, 0o755)
                return
            log(f"{tool} could not strip {binary}: {result.stderr.strip()}")
    raise PackagingError("no strip tool could strip the binary (install binutils or llvm)")


def precompile(binary, config, out):
    """Checks `config` and compiles its policies into `out` with `ripcord precompile`; returns its answer."""
    result = subprocess.run([str(binary), "precompile", "--config", str(config), "--out", str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(result.stderr.strip() or f"ripcord precompile failed ({result.returncode})")
    return json.loads(result.stdout)


def read_config(config):
    try:
        with open(config, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise PackagingError(f"cannot read {config}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise PackagingError(f"{config}: {e}") from e


def stage(binary, config, stage_dir, binary_name, check_with=None):
    """Lays out a package in `stage_dir`: the stripped binary as `binary_name`, the configuration as guards.toml,
    every policy file it names at the same relative path, and precompiled/ with the policies' code (when
    `binary` runs on this machine; `check_with` is a ripcord that does, for a cross build, which checks the
    configuration but whose code is not shipped)."""
    config = Path(config)
    stage_dir.mkdir(parents=True, exist_ok=True)
    strip(binary, stage_dir / binary_name)
    runs_here = check_with is None
    answer = precompile(binary if runs_here else check_with, config, stage_dir / "precompiled")
    if not runs_here:
        shutil.rmtree(stage_dir / "precompiled")
    shutil.copyfile(config, stage_dir / "guards.toml")
    for relative in answer["policy_files"]:
        target = stage_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.parent / relative, target)
    return answer


def check_audit_log(config, where):
    """Refuses a configuration whose audit log is not under /tmp, the only place `where` lets ripcord write."""
    settings = read_config(config).get("settings", {})
    audit_log = settings.get("audit_log")
    if not (isinstance(audit_log, str) and audit_log.startswith("/tmp/")):
        raise PackagingError(
            f"{config}: settings.audit_log = {audit_log!r}: {where} can write only under /tmp; set "
            'audit_log = "/tmp/ripcord-audit.jsonl" (the records that last are the JSON logs)')


def files_of(directory):
    """Every file under `directory`, sorted, as (path inside, path on disk)."""
    return sorted((p.relative_to(directory).as_posix(), p) for p in Path(directory).rglob("*") if p.is_file())
