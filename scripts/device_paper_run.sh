#!/usr/bin/env bash
# Train the ANN and record the book's notebooks 01-07 on a lent GPU machine, within one call.
#
#   scripts/device_paper_run.sh [PROFILE] [extra `t2fsnn record` arguments, e.g. -p go_steps 50]
#   scripts/device_paper_run.sh wheels      # here: download the wheels the GPU machine lacks into .whl/
#
# Prepare here, once: commit, then
#   .venv/bin/python -m t2fsnn.data_pack pack /work/shared/data/torchvision   # data/packed/cifar10-q75.npz
#   scripts/device_paper_run.sh wheels
# Run there: command "bash scripts/device_paper_run.sh paper", carry [".git", ".whl", "data/packed"],
# timeout_s 600. Test here: PROFILE=smoke OUT=/tmp/out ALLOW_DIRTY=1 scripts/device_paper_run.sh
#
# The machine's python3 has torch, numpy, pandas, matplotlib, yaml and tqdm but no Jupyter: the
# wheels in .whl/ are installed into a temporary folder. One `t2fsnn record` runs the notebooks
# into $RUNS (it resumes: a second call on a warm machine skips what is done), stopped before the
# deadline; every 15 s and at the end, $OUT gets recorded.tar.gz (the run folder without models),
# each trained ANN in parts of 15 MiB (cat NAME.pt.part* > NAME.pt; sha256 in log.txt and
# run.json) and log.txt.
# The training images travel as JPEG copies (quality 75), so the data's sha256 in run.json and the
# ANN's cache key differ from a run on the original files: a reader finds the committed ANN by its key
# only with the same unpacked copy (python -m t2fsnn.data_pack unpack).
# Environment: OUT (required), DEADLINE (seconds after the start by which the script has
# returned, default 510), NOTEBOOKS, PACK, WHEELS, PY, RUNS (default .t2fsnn-cache/recorded),
# T2FSNN_CACHE (default .t2fsnn-cache), ALLOW_DIRTY=1 (record from uncommitted changes).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}

if [ "${1:-}" = wheels ]; then  # the Jupyter stack of .venv, for the GPU machine's Python 3.12
  exec .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$WHEELS" papermill==2.7.0 nbclient==0.11.0 nbformat==5.11.1 \
    jupyter-client==8.10.0 jupyter-core==5.9.1 ipykernel==7.4.0 ipython==9.19.1 ipython-pygments-lexers==1.1.1 \
    comm==0.2.3 debugpy==1.8.22 matplotlib-inline==0.2.2 traitlets==5.16.1 pyzmq==27.3.0 tornado==6.6.1 \
    platformdirs==4.14.9 fastjsonschema==2.22.3 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    referencing==0.37.0 rpds-py==2026.9.1 entrypoints==0.4.2 tenacity==9.2.1 myst-nb==1.4.0 docutils==0.21.2 \
    wcwidth==0.9.5 nest-asyncio2==1.7.4 stack-data==0.6.3 executing==2.3.0 asttokens==3.0.2 pure-eval==0.2.4 \
    pexpect==4.9.0 ptyprocess==0.7.0 prompt-toolkit==3.0.53
fi

PROFILE=${PROFILE:-paper}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then PROFILE=$1; shift; fi
DEADLINE=${DEADLINE:-510}
NOTEBOOKS=${NOTEBOOKS:-01_train_and_convert,02_ttfs_coding_primer,03_spike_time_distributions,04_kernel_optimization,05_ablation,06_inference_curves,07_comparison}
PACK=${PACK:-data/packed/cifar10-q75.npz}
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
START=$SECONDS
die() { echo "device_paper_run: $*"; exit 2; }

collect() {  # the run folders (no models) and each trained ANN in 15 MiB parts, into $OUT
  tar -czf "$OUT/.recorded.tmp" --exclude='*.pt' -C "$RUNS" . 2>/dev/null && mv "$OUT/.recorded.tmp" "$OUT/recorded.tar.gz"
  for pt in "$RUNS"/*/*.pt $(find "$T2FSNN_CACHE/models" -name '*.pt' -newer "$MARK" 2>/dev/null); do
    [ -f "$pt" ] && [ ! -e "$SCRATCH/$(basename "$pt").sent" ] || continue
    split -b 15M -d -a 1 "$pt" "$OUT/$(basename "$pt").part" && sha256sum "$pt" && touch "$SCRATCH/$(basename "$pt").sent"
  done
}

main() {
  echo "device_paper_run: profile $PROFILE, deadline ${DEADLINE}s, $(uname -n), $(nvidia-smi -L 2>/dev/null || echo 'no GPU')"
  SCRATCH=$(mktemp -d); trap 'rm -rf "$SCRATCH"' EXIT  # the wheels' install, the unpacked data
  MARK=$SCRATCH/start; touch "$MARK"
  # Python: this one if it runs notebooks, else the wheels installed into a temporary folder
  PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
  export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PY" -c 'import papermill, ipykernel, nbclient, myst_nb' 2>/dev/null; then
    [ -d "$WHEELS" ] || die "$PY lacks papermill/ipykernel and there is no $WHEELS/ (carry it; see the header)"
    SITE=$SCRATCH/site
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
      || die "installing $WHEELS/*.whl failed"
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)  # so run.json names the package version
    mkdir -p "$SITE/t2fsnn-$version.dist-info" && printf 'Metadata-Version: 2.1\nName: t2fsnn\nVersion: %s\n' \
      "$version" > "$SITE/t2fsnn-$version.dist-info/METADATA"
    export PYTHONPATH="$PWD:$SITE"
  fi
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' || die "$PY has no torch"
  # git: the record notes the commit; a copy may differ from the checkout in owner and file modes
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
  if ! git rev-parse -q --verify HEAD >/dev/null 2>&1; then
    echo "no git repository here (carry .git): recording from a throwaway commit of this copy"
    { git init -q && git add -A && git -c user.name=device -c user.email=device@localhost commit -qm "device copy"; } \
      || die "git failed"
  fi
  export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_1=core.fileMode GIT_CONFIG_VALUE_1=false
  echo "commit $(git rev-parse HEAD), tree $(git rev-parse 'HEAD^{tree}') (here: git rev-parse 'HEAD^{tree}')"

  export T2FSNN_NO_DOWNLOAD=1 T2FSNN_CACHE=${T2FSNN_CACHE:-$PWD/.t2fsnn-cache}
  RUNS=${RUNS:-.t2fsnn-cache/recorded}  # relative: run.json keeps the command
  mkdir -p "$RUNS"
  if [ -f "$PACK" ]; then
    export T2FSNN_DATA=$SCRATCH/data
    "$PY" -m t2fsnn.data_pack unpack "$PACK" --root "$T2FSNN_DATA" || die "could not unpack $PACK"
    "$PY" -m t2fsnn.book.cli data --root "$T2FSNN_DATA"
  elif [ "$PROFILE" != smoke ]; then
    die "no $PACK (make it with python -m t2fsnn.data_pack pack, and carry data/packed)"
  fi

  left=$(( DEADLINE - (SECONDS - START) - 30 ))  # 30 s to stop the kernel and collect
  [ "$left" -ge 30 ] || die "only ${left}s left before the deadline: nothing recorded"
  echo "recording $NOTEBOOKS ($(( SECONDS - START ))s in, at most ${left}s)"
  # every 15 s, what is done goes to $OUT: it comes back however the call ends
  ( n=0; while [ ! -e "$SCRATCH/stop" ]; do sleep 1; (( ++n % 15 )) || collect; done ) & watcher=$!
  timeout --signal=INT --kill-after=15 "$left" "$PY" -m t2fsnn.book.cli record -q --profile "$PROFILE" \
    --notebooks "$NOTEBOOKS" --output-root "$RUNS" ${ALLOW_DIRTY:+--allow-dirty} "$@"
  rc=$?
  touch "$SCRATCH/stop"; wait "$watcher"
  collect
  case $rc in
    0) echo "recorded";; 124|137) echo "stopped at the deadline: call again to resume (a warm machine keeps the cache)";;
    *) echo "the record failed (exit $rc)";;
  esac
  echo "done in $(( SECONDS - START ))s; in $OUT:"; ls -l "$OUT"
  return "$rc"
}

main "$@" 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
