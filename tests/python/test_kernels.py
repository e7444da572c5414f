"""The CPU kernel variants (csrc/kernels/cpu/) against the scalar references.

1. tests/cpp/test_kernels.cpp, built by its CMake project (tests/cpp/CMakeLists.txt: the
   kernels compiled by cmake/cpu_kernels.cmake, as the package compiles them), checks every
   kernel of every variant this CPU runs against kernels/ref on awkward shapes; one test per
   variant. On x86 the NEON variant is cross-compiled (g++-aarch64-linux-gnu) and run under
   qemu-user.
2. End to end through _core: a small random model (dimensions that are not multiples of any
   vector width) run with PYTRANSFORMER_ISA forced to each variant in a subprocess gives the
   scalar reference's greedy tokens and logits within 1e-4 (f32, f16, bf16 weights), and
   close int8 logits.
3. The variant choice: cpu_info() and PYTRANSFORMER_ISA errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from tiny_models import write_random_model

ROOT = Path(__file__).resolve().parents[2]
INFO = _core.cpu_info()
VARIANTS = INFO["supported_isas"]
CMAKE = shutil.which("cmake")


def build_kernel_test(output: Path, cmake_options: list[str] = ()) -> Path:
    """Builds tests/cpp's CMake project (the kernels as cmake/cpu_kernels.cmake compiles them
    for the package, and the test) in `output`; returns the test binary."""
    configure = subprocess.run([CMAKE, "-S", str(ROOT / "tests" / "cpp"), "-B", str(output),
                                "-DCMAKE_BUILD_TYPE=Release", *cmake_options],
                               capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    build = subprocess.run([CMAKE, "--build", str(output), "-j", str(os.cpu_count() or 2)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return output / "test_kernels"


@pytest.fixture(scope="module")
def kernel_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CMAKE is None:
        pytest.skip("no cmake to build tests/cpp (pip install .[test] installs it)")
    return build_kernel_test(tmp_path_factory.mktemp("kernels"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernels_match_the_reference(kernel_test: Path, variant: str) -> None:
    result = subprocess.run([str(kernel_test), variant], capture_output=True, text=True,
                            timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"PASSED: 0 failing checks" in result.stdout
    assert result.stdout.count(f"{variant} ") >= 10  # every kernel reported for this variant


# --- the NEON variant, cross-compiled for aarch64 and run under qemu-user ------------------

CROSS_COMPILER = "aarch64-linux-gnu-g++"  # Debian package g++-aarch64-linux-gnu
QEMU = "qemu-aarch64"                     # Debian package qemu-user


@pytest.mark.skipif(INFO["architecture"] == "aarch64", reason="runs natively on this CPU")
def test_neon_kernels_under_qemu(tmp_path: Path) -> None:
    missing = [tool for tool in (CROSS_COMPILER, QEMU, "cmake") if shutil.which(tool) is None]
    if missing:
        message = (f"{' and '.join(missing)} not installed (apt-get install "
                   "g++-aarch64-linux-gnu qemu-user): the NEON kernels were not run")
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run them (README test command)")
        pytest.skip(message)
    binary = build_kernel_test(tmp_path, [
        "-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
        f"-DCMAKE_CXX_COMPILER={shutil.which(CROSS_COMPILER)}", "-DCMAKE_EXE_LINKER_FLAGS=-static"])
    result = subprocess.run([QEMU, str(binary), "scalar", "neon"], capture_output=True,
                            text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "supported: scalar neon" in result.stdout
    assert "PASSED: 0 failing checks" in result.stdout
    assert result.stdout.count("neon ") >= 10


# --- end to end, one subprocess per variant -------------------------------------------------

SOURCES = [[5, 9, 12, 7, 3, 29, 1], [8, 3, 1], [20, 22, 17, 11, 1], [6, 1]]
TARGETS = [[0, 11, 4, 9, 2], [0, 7], [0, 3, 3, 8, 19, 25, 2], [0, 28]]
RUN_MODEL = """
import json, sys
import numpy as np
from pytransformer import _core
paths, sources, targets, out = json.loads(sys.argv[1])
result = {"isa": _core.cpu_info()["selected_isa"]}
for name, path in paths.items():
    for threads in (1, 2):
        model = _core.Model(path, threads)
        logits = model.teacher_forced_logits(sources, targets)
        tokens = _core.generate(model, sources,
                                _core.SearchOptions(model, beam_size=1, max_length=12))
        beams = _core.generate(model, sources,
                               _core.SearchOptions(model, beam_size=3, max_length=12))
        result[f"{name}/{threads}"] = {
            "logits": [l.tolist() for l in logits],
            "greedy": [h[0][0] for h in tokens], "beam": [h[0][0] for h in beams]}
json.dump(result, open(out, "w"))
"""


@pytest.fixture(scope="module")
def model_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    directory = tmp_path_factory.mktemp("isa_models")
    paths = {}
    # "int8_all": every matrix through the int8 kernels (quantize="int8" keeps some in f16).
    for quantize in (None, "f16", "bf16", "int8_all"):
        name = {None: "f32", "int8_all": "int8"}.get(quantize, quantize)
        path = directory / f"{name}.ptm"
        write_random_model(path, seed=11, quantize=quantize, d_model=40, heads=4, ffn_dim=72)
        paths[name] = str(path)

    def run(variant: str) -> dict:
        out = directory / f"{variant}.json"
        env = dict(os.environ, PYTRANSFORMER_ISA=variant)
        arguments = json.dumps([paths, SOURCES, TARGETS, str(out)])
        result = subprocess.run([sys.executable, "-c", RUN_MODEL, arguments], env=env,
                                capture_output=True, text=True, timeout=600, cwd=directory)
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads(out.read_text())

    return {variant: run(variant) for variant in VARIANTS}


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "scalar"])
def test_every_variant_gives_the_reference_outputs(model_runs: dict, variant: str) -> None:
    reference, ours = model_runs["scalar"], model_runs[variant]
    assert ours["isa"] == variant
    for name in ("f32", "f16", "bf16", "int8"):
        for threads in (1, 2):
            key = f"{name}/{threads}"
            want, got = reference[key], ours[key]
            for a, b in zip(want["logits"], got["logits"]):
                a, b = np.asarray(a), np.asarray(b)
                if name == "int8":  # activations are quantised: rounding can flip an int8 step
                    assert np.abs(a - b).max() <= 1e-2 * np.abs(a).max(), key
                else:
                    np.testing.assert_allclose(b, a, atol=1e-4, err_msg=key)
            if name != "int8":
                assert got["greedy"] == want["greedy"], key
                assert got["beam"] == want["beam"], key
            # Results never depend on the thread count.
            assert got == ours[f"{name}/1"], key


def test_cpu_info_reports_the_choice() -> None:
    assert INFO["supported_isas"][0] == "scalar"
    assert INFO["best_isa"] == INFO["supported_isas"][-1]
    assert INFO["physical_cores"] >= 1 and INFO["logical_cpus"] >= INFO["physical_cores"]
    requested = os.environ.get("PYTRANSFORMER_ISA")
    assert INFO["selected_isa"] == (requested if requested not in (None, "", "auto")
                                    else INFO["best_isa"])
    if INFO["architecture"] == "x86_64":
        assert INFO["features"]["avx2"] == ("avx2" in VARIANTS)


@pytest.mark.parametrize("value,message", [
    ("avx9000", "is not one of auto, scalar"),
    *([] if "neon" in VARIANTS else [("neon", "this CPU or build cannot run it")]),
])
def test_unusable_isa_request_is_a_clear_error(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "model.ptm"
    write_random_model(path)
    code = ("import sys\nfrom pytransformer import _core\n"
            "print(_core.cpu_info()['isa_error'])\n"
            "try:\n    _core.Model(sys.argv[1])\n"  # loading alone must fail
            "except ValueError as e:\n    print('ValueError', e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, env=dict(os.environ, PYTRANSFORMER_ISA=value),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert message in first and value in first
    assert second.startswith("ValueError") and message in second
