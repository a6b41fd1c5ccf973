#!/usr/bin/env bash
# GPU check, in about 8 minutes on one GPU: the environment; calibrate at 0, 20 and 100 %
# overhead with CUDA events; the study preset's models (PyTorch twins: the borrowed machine has
# no TensorFlow) default vs deterministic with intervals; the knob ladder for resnet50; a kernel
# capture with attribution (nsys when on the PATH, else the torch profiler); `verify` on
# resnet18; JAX's smallcnn default vs deterministic where JAX sees the device (a CUDA jaxlib
# on the GPU machine; any jax in the dry run); the per-trial overhead; and cold vs warm trial
# starts (benchmarks/sweep_efficiency.py). Prints one summary
# and leaves the store and the report
# under ${NNR_CHECK_DIR:-gpu-check}.
#   bash scripts/gpu-check.sh                        # on the GPU machine
#   NNR_CHECK_DRY_RUN=1 bash scripts/gpu-check.sh    # the same steps on the CPU, tiny sizes
# From a bare checkout (no .venv, no nnr-profile installed) it installs the package and the
# wheels in .whl/ (scripts/build-wheelhouse.sh) into ${NNR_SITE:-/tmp/nnr-site}, offline.
set -uo pipefail
cd "$(dirname "$0")/.."
python=python3
if [ -x .venv/bin/nnr-profile ]; then
    export PATH="$PWD/.venv/bin:$PATH"
    python=.venv/bin/python
elif ! command -v nnr-profile >/dev/null 2>&1; then
    site=${NNR_SITE:-/tmp/nnr-site}
    wheels=()
    wheelhouse=${NNR_WHEELHOUSE:-.whl}
    [ -d "$wheelhouse" ] && wheels=("$wheelhouse"/*.whl)
    if ! "$python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --no-build-isolation --no-compile --target "$site" "${wheels[@]}" . >&2; then
        echo "gpu-check: cannot install nnr-profile offline; run scripts/build-wheelhouse.sh" \
             "where pip reaches a registry and bring .whl along" >&2
        exit 2
    fi
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH"
fi
out=${NNR_CHECK_DIR:-gpu-check}
models=${NNR_CHECK_MODELS:-resnet50,vgg16,inception_v3,densenet121,mobilenet_v2}
if [ -n "${NNR_CHECK_DRY_RUN:-}" ]; then
    device=()
    models=${NNR_CHECK_MODELS:-resnet50}
    overheads=${NNR_CHECK_OVERHEADS:-1.0}
    calibrate=(--iterations 3 --warmup 1 --repeats 2)
    study=(--image-size 75 --batch-size 2 --iterations 2 --warmup 1 --repeats 2)
    ladder=(--image-size 32 --batch-size 2 --iterations 2 --warmup 1 --repeats 2)
    kernels=(--image-size 32 --batch-size 2 --iterations 2 --warmup 1 --repeats 1)
    verify=(--batch-size 2 --iterations 2 --image-size 32)
    jax_run=(--batch-size 2 --iterations 2 --warmup 1 --repeats 1)
    jax_probe='import jax, flax, optax'
    starts=(--framework torch --gpu cpu --repeats 1 --iterations 2)
else
    device=(--gpu "${NNR_CHECK_GPU:-0}")
    overheads=${NNR_CHECK_OVERHEADS:-0 0.2 1.0}
    calibrate=(--iterations 100 --warmup 10 --repeats 3)
    study=(--iterations 50 --warmup 10 --repeats 2)
    ladder=(--batch-size 64 --iterations 50 --warmup 10 --repeats 2)
    kernels=(--batch-size 64 --iterations 20 --warmup 5 --repeats 1)
    verify=(--batch-size 16 --iterations 10)
    jax_run=(--batch-size 128 --iterations 50 --warmup 10 --repeats 2)
    jax_probe='import jax, flax, optax; jax.devices("gpu")'
    starts=(--framework torch,jax --gpu "${NNR_CHECK_GPU:-0}" --repeats 2 --iterations 20)
fi
if command -v nsys >/dev/null 2>&1; then kernel_collector=nsys; else kernel_collector=torch-profiler; fi
mkdir -p "$out"
db="$out/nnr.db"
log="$out/check.log"
: > "$log"
: > "$out/steps.txt"
step() {  # name, command...: run, log, remember the exit status and the seconds taken
    local name=$1; shift
    local began=$SECONDS
    echo "== $name: $*" | tee -a "$log"
    timeout "${NNR_CHECK_STEP_TIMEOUT:-240}" "$@" >> "$log" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - began))" | tee -a "$log" "$out/steps.txt"
}
step environment nnr-profile env "${device[@]}"
for overhead in $overheads; do
    step "calibrate-$overhead" nnr-profile run --model calibrate \
        --workload-arg "overhead=$overhead" --framework torch "${device[@]}" \
        --modes default,deterministic "${calibrate[@]}" --db "$db"
done
step study nnr-profile run --preset study --framework torch --model "$models" "${device[@]}" \
    "${study[@]}" --db "$db"
step ladder-resnet50 nnr-profile run --model resnet50 --framework torch "${device[@]}" \
    --modes ladder "${ladder[@]}" --db "$db"
step "kernels-$kernel_collector" nnr-profile run --model resnet50 --framework torch \
    "${device[@]}" --modes default,deterministic "${kernels[@]}" \
    --collector "timing,$kernel_collector" --db "$db"
step verify-resnet18 nnr-profile verify --model resnet18_cifar --framework torch \
    "${device[@]}" "${verify[@]}" --json
if "$python" -c "$jax_probe" >/dev/null 2>&1; then
    step jax-smallcnn nnr-profile run --model smallcnn --framework jax "${device[@]}" \
        --modes default,deterministic "${jax_run[@]}" --db "$db"
else
    echo "JAX step: skipped (no jax that sees the device: pip install 'jax[cuda12]' flax optax)"
fi
step trial-starts "$python" benchmarks/sweep_efficiency.py "${starts[@]}"
step report nnr-profile report --db "$db" --out "$out/report"
echo "TensorFlow steps: skipped where TensorFlow is not installed (the borrowed GPU machine)" \
     "$("$python" -c 'import tensorflow' 2>/dev/null && echo '(installed here: not run by this check)')"
"$python" scripts/gpu_check_summary.py "$out"
echo "trial starts, cold vs warm (benchmarks/sweep_efficiency.py):"
grep -E '^ *(framework +start|(torch|jax) +(cold|warm)) ' "$log"
grep -h '"reproducible"' "$log" | head -3
! grep -q ' rc=[1-9]' "$out/steps.txt"
