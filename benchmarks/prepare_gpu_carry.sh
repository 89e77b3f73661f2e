#!/usr/bin/env bash
# Prepare .gpu/ (in .gitignore) for running benchmarks/gpu_check.py on this project's device
# machine, which has torch, h5py and numpy but not PyAV or kornia and reaches no package index.
# .gpu/ gets the wheels (48 MB with the weights, for its Python 3.12) and the XFeat weights; then run
# there, with carry [".gpu"]:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/*.whl &&
#   PYTHONPATH=/tmp/site MEMTSM_XFEAT_WEIGHTS=.gpu/xfeat.pt PYTHONUNBUFFERED=1 \
#   python3 benchmarks/gpu_check.py --json $OUT/gpu_check.json
#
# DALI (199 MB at the least) cannot travel (64 MiB limit): its rows then read "not measured".
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MEMTSM_SHARED_DATA:-../shared/data}
mkdir -p .gpu
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu av==18.1.0 kornia==0.9.0 kornia_rs==0.2.0
cp "$SHARED/xfeat/xfeat.pt" .gpu/xfeat.pt
du -sh .gpu
