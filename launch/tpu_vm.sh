#!/usr/bin/env bash
# Runs one gpj experiment on a Cloud TPU VM or TPU pod slice: creates the TPU VM (or reuses
# it), installs gpj with jax[tpu] on every worker, runs the experiment on all workers at once
# and copies its workdir back from worker 0.
#
# Usage, from a gpj checkout, with the Google Cloud CLI installed and logged in:
#   launch/tpu_vm.sh --name=NAME --zone=ZONE [OPTIONS] -- GPJ_ARGS...
#   launch/tpu_vm.sh --dry-run --name=NAME --zone=ZONE [OPTIONS] -- GPJ_ARGS...
#   launch/tpu_vm.sh --help
#
# Example, a v4 pod slice of 4 hosts:
#   launch/tpu_vm.sh --name=gpj-v4 --zone=us-central2-b --accelerator-type=v4-32 --extras=tfds \
#       --workdir=runs/probe-cifar10 -- --config=configs/probe.py:cifar10 \
#       --config.data.data_dir=gs://BUCKET/tensorflow_datasets
#
# Options:
#   --name=NAME              TPU VM name (required); an existing TPU VM is reused as it is
#   --zone=ZONE              zone (required), e.g. us-central2-b (v4), us-east1-d (v5e)
#   --accelerator-type=TYPE  type when creating (default v5litepod-8), e.g. v4-32, v5p-8, v6e-8
#   --version=VERSION        TPU software version when creating; default by type:
#                            tpu-ubuntu2204-base (v2-v4), v2-alpha-tpuv5-lite (v5e, v5litepod),
#                            v2-alpha-tpuv5 (v5p), v2-alpha-tpuv6e (v6e)
#   --project=PROJECT        Google Cloud project (default: gcloud's configured project)
#   --workdir=DIR            gpj's workdir on the workers, relative to their home directory or
#                            absolute (default: runs/tpu-NAME-<date>-<time>); worker 0's copy
#                            lands in DIR here, or in runs/<last folder of DIR> if DIR is absolute
#   --repo=URL               git clone gpj from URL on every worker instead of copying this
#                            checkout; --ref=REF picks a branch or tag
#   --extras=EXTRAS          gpj's optional extras to install too, e.g. tfds (real datasets)
#   --dry-run                print every command instead of running it (local steps as comments)
#
# Steps (every gcloud command gets --zone, and --project if given):
#   1. gcloud compute tpus tpu-vm describe NAME; create it if it does not exist
#   2. copy the code: a `git archive` of this checkout's tracked files as they are in the working
#      tree (uncommitted edits included, untracked files not), scp --worker=all; or --repo
#   3. ssh --worker=all: unpack it into ~/gpj; create ~/gpj-venv (Python 3.12, fetched by uv,
#      as the TPU images ship Python 3.10) and install jax[tpu] and gpj into it
#   4. ssh --worker=all: cd ~/gpj && ~/gpj-venv/bin/python -m gpj.main GPJ_ARGS
#      --workdir=$HOME/DIR --distributed=auto (JAX's TPU detection joins the workers;
#      process 0 writes results.json, report.md and the figures)
#   5. scp --recurse --worker=0 NAME:DIR, to DIR here (runs/<last folder> for an absolute DIR)
# Running the same command again reuses the TPU VM and resumes from the checkpoints in DIR.
# Slices with several workers (types above -8: v4-16, v5litepod-16 ...) share no disk, and gpj's
# checkpoints need one that all processes see: there, give an absolute --workdir on a folder
# mounted on every worker (a Cloud Storage bucket through gcsfuse, Filestore); a home-relative
# one works on single-worker slices only.
# Data must be readable on every worker (a gs:// data_dir works with --extras=tfds).
# Reaching all workers needs your key in ssh-agent: ssh-add ~/.ssh/google_compute_engine
# The TPU VM keeps running, and billing, until: gcloud compute tpus tpu-vm delete NAME --zone=ZONE
#
# Usage errors exit with 2; a failing step exits with its status.
set -euo pipefail

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)
worker_python=3.12  # gpj needs >= 3.11; the TPU software images ship 3.10

fail() {
  echo "error: $1 (see $script --help)" >&2
  exit 2
}

print_help() {
  # The comment block above is the help text.
  awk 'NR > 1 { if ($0 == "#" || $0 ~ /^# /) { sub(/^# ?/, ""); print } else exit }' "$0"
}

# Prints its arguments as one line that a shell reads back as the same words.
shell_words() {
  local arg quote="'\\''" words=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      words+=("$arg")
    else
      words+=("'${arg//\'/$quote}'")
    fi
  done
  echo "${words[*]}"
}

# Says what comes next: a comment line under --dry-run, a progress line on stderr otherwise.
step() {
  if ((dry_run)); then echo "# $1"; else echo "$script: $1" >&2; fi
}

# Runs `gcloud compute tpus tpu-vm ARGS` with the zone and project flags, or prints it.
tpu_vm() {
  local command=(gcloud compute tpus tpu-vm "$@" "${gcloud_flags[@]}")
  if ((dry_run)); then shell_words "${command[@]}"; else "${command[@]}"; fi
}

default_version() {
  case $1 in
    v2-* | v3-* | v4-*) echo tpu-ubuntu2204-base ;;
    v5litepod-* | v5e-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    *) fail "no default --version for $1; give one (gcloud compute tpus tpu-vm versions list)" ;;
  esac
}

dry_run=0 name="" zone="" accelerator_type=v5litepod-8 version="" project=""
workdir="" repo="" ref="" extras=""
while (($# > 0)); do
  case $1 in
    -h | --help) print_help; exit 0 ;;
    --dry-run) dry_run=1 ;;
    --name=*) name=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --accelerator-type=*) accelerator_type=${1#*=} ;;
    --version=*) version=${1#*=} ;;
    --project=*) project=${1#*=} ;;
    --workdir=*) workdir=${1#*=} ;;
    --repo=*) repo=${1#*=} ;;
    --ref=*) ref=${1#*=} ;;
    --extras=*) extras=${1#*=} ;;
    --) shift; break ;;
    --name | --zone | --accelerator-type | --version | --project | --workdir | --repo | --ref | \
      --extras) fail "$1 needs a value: $1=VALUE" ;;
    *) fail "unknown option '$1'; gpj's own arguments go after --" ;;
  esac
  shift
done
(($# > 0)) || fail "no arguments for gpj.main after --, e.g. -- --config=configs/probe.py"
[[ -n $name ]] || fail "--name=NAME is required"
[[ $name =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] ||
  fail "--name=$name: use lowercase letters, digits and hyphens, starting with a letter"
[[ -n $zone ]] || fail "--zone=ZONE is required, e.g. --zone=us-central2-b"
[[ $accelerator_type =~ ^v[0-9]+[a-z]*-[0-9]+$ ]] ||
  fail "--accelerator-type=$accelerator_type is not a TPU type such as v4-8 or v5litepod-16"
version=${version:-$(default_version "$accelerator_type")}
[[ -z $ref || -n $repo ]] || fail "--ref needs --repo=URL"
[[ $extras =~ ^[a-z0-9,_-]*$ ]] || fail "--extras=$extras: give names such as tfds, comma-separated"
workdir=${workdir:-runs/tpu-$name-$(date +%Y%m%d-%H%M%S)}
workdir=${workdir%/}
[[ -n $workdir && $workdir != *..* ]] || fail "--workdir must be a folder name without '..'"
for arg in "$@"; do
  case $arg in
    --workdir*) fail "$arg: give the workdir as $script --workdir=DIR, before --" ;;
    --coordinator_address* | --num_processes* | --process_id* | --distributed*)
      fail "$arg: this script sets the process flags itself; drop it" ;;
  esac
done
if ((!dry_run)); then
  command -v gcloud >/dev/null || fail "gcloud not found; install the Google Cloud CLI"
fi
if [[ -z $repo ]]; then
  git -C "$repo_root" rev-parse --git-dir >/dev/null 2>&1 ||
    fail "$repo_root is not a git checkout; copy gpj with --repo=URL instead"
fi
if ((${accelerator_type##*-} > 8)) && [[ $workdir != /* ]]; then
  echo "note: $accelerator_type has several workers, which share no disk; gpj's checkpoints" \
    "need an absolute --workdir on a folder mounted on every worker (see --help)" >&2
fi
gcloud_flags=("--zone=$zone")
if [[ -n $project ]]; then gcloud_flags+=("--project=$project"); fi

# Relative workdirs live under the workers' home directory, outside ~/gpj, which every launch
# replaces.
if [[ $workdir == /* ]]; then
  remote_workdir=$(shell_words "$workdir")
else
  remote_workdir="\"\$HOME\"/$(shell_words "$workdir")"
fi

step "TPU VM $name: reuse it if it exists, else create it"
if ((dry_run)); then
  tpu_vm describe "$name" "--format=value(state)"
  tpu_vm create "$name" "--accelerator-type=$accelerator_type" "--version=$version"
else
  state=$(tpu_vm describe "$name" "--format=value(state)" 2>/dev/null) || state=""
  if [[ -z $state ]]; then
    step "creating $name ($accelerator_type, $version)"
    tpu_vm create "$name" "--accelerator-type=$accelerator_type" "--version=$version"
  elif [[ $state != READY ]]; then
    echo "error: TPU VM $name is $state, not READY; start it (gcloud compute tpus tpu-vm start)" \
      "or delete it" >&2
    exit 1
  else
    step "reusing $name (READY; --accelerator-type and --version apply only when creating)"
  fi
fi

if [[ -n $repo ]]; then
  clone=(git clone --quiet --depth=1)
  if [[ -n $ref ]]; then clone+=("--branch=$ref"); fi
  fetch_code="rm -rf ~/gpj && $(shell_words "${clone[@]}" "$repo") ~/gpj"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tarball=$tmp/gpj-src.tar.gz
  step "packing the tracked files of $repo_root as they are now: git stash create, git archive"
  if ((!dry_run)); then
    # A commit of the working tree that no branch or stash refers to (empty when nothing
    # changed); it is thrown away, so any committer name will do.
    snapshot=$(git -C "$repo_root" -c user.name=gpj -c user.email=gpj@localhost stash create)
    git -C "$repo_root" archive --format=tar.gz "--output=$tarball" "${snapshot:-HEAD}"
  fi
  step "copying it to every worker"
  tpu_vm scp "$tarball" "$name:gpj-src.tar.gz" --worker=all
  fetch_code="rm -rf ~/gpj && mkdir ~/gpj && tar -xzf ~/gpj-src.tar.gz -C ~/gpj"
  fetch_code+=" && rm ~/gpj-src.tar.gz"
fi
package="\"\$HOME/gpj${extras:+[$extras]}\""
install="set -euo pipefail; $fetch_code; export PATH=\"\$HOME/.local/bin:\$PATH\";"
install+=" command -v uv >/dev/null || python3 -m pip install --quiet --user uv;"
install+=" [ -x ~/gpj-venv/bin/python ] || uv venv --quiet --python=$worker_python ~/gpj-venv;"
install+=" uv pip install --quiet --python=\"\$HOME/gpj-venv/bin/python\" 'jax[tpu]' -e $package"
step "installing gpj and jax[tpu] on every worker"
tpu_vm ssh "$name" --worker=all "--command=$install"

run="cd ~/gpj && exec ~/gpj-venv/bin/python -m gpj.main $(shell_words "$@")"
run+=" --workdir=$remote_workdir --distributed=auto"
step "running gpj on every worker"
tpu_vm ssh "$name" --worker=all "--command=$run"

local_workdir=$workdir
if [[ $workdir == /* ]]; then local_workdir=runs/$(basename "$workdir"); fi
parent=$(dirname "$local_workdir")
step "copying $workdir back from worker 0 to $local_workdir"
if ((!dry_run)); then mkdir -p "$parent"; fi
tpu_vm scp --recurse --worker=0 "$name:$workdir" "$parent"
step "done: $local_workdir here; the TPU VM keeps running (and billing) until:"
step "  gcloud compute tpus tpu-vm delete $name --zone=$zone"
