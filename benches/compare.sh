#!/usr/bin/env bash
# hubmock side by side with WireMock and nginx: one table, every figure measured in this run
# on this machine. BENCHMARKS.md ("Side by side") says what each row measures.
#
#   benches/compare.sh                   # the full run: about 6 minutes once built
#   COMPARE_TINY=1 benches/compare.sh    # every phase once with a few hundred operations (CI)
#
# Installs what is missing (Debian's nginx, wrk and, without a java, default-jre-headless;
# WireMock's standalone jar from the npm package `wiremock`, kept under the target directory),
# builds the benches, runs benches/compare/ (phases ready, fanout, latency, callbacks, slow)
# and benches/memory.rs (phase memory), and prints the table in Markdown on stdout; progress goes to
# stderr. Settings are environment variables: COMPARE_PHASES (a comma-separated subset of
# the phases above), COMPARE_MEMORY_COUNTS (the memory phase's push counts, default
# 10000,100000,300000), COMPARE_WIREMOCK_VERSION (default 3.13.2), and the COMPARE_* settings
# benches/compare/main.rs lists. Nothing is asserted about the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "compare.sh: $*" >&2; }

scratch="$(mktemp -d)"
rows="$scratch/rows.md"
: >"$rows"
# The bench program running (it stops what it started when it ends or dies).
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

fail() {
    say "$*"
    if [ -s "$rows" ]; then
        say "the rows measured before that:"
        cat "$rows" >&2
    fi
    exit 1
}

tiny="${COMPARE_TINY:-0}"
phases="${COMPARE_PHASES:-ready,fanout,latency,callbacks,slow,memory}"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
wiremock_version="${COMPARE_WIREMOCK_VERSION:-3.13.2}"

# --- What the bench needs, installed only when missing --------------------------------------
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
# need PACKAGE: Debian's, installed unless it is.
need() {
    dpkg -s "$1" >/dev/null 2>&1 && return 0
    say "installing $1 (apt-get)"
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq || fail "apt-get update failed"
        apt_updated=1
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$1" >/dev/null || fail "apt-get install $1 failed"
}
need nginx
need wrk
command -v java >/dev/null || need default-jre-headless
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx" ] || fail "no nginx program after installing nginx"
wrk="$(command -v wrk)" || fail "no wrk program after installing wrk"
java="$(command -v java)" || fail "no java program after installing default-jre-headless"

jar="$target/wiremock/wiremock-standalone-$wiremock_version.jar"
if [ ! -s "$jar" ]; then
    command -v npm >/dev/null || need npm
    say "fetching WireMock $wiremock_version (npm pack wiremock@$wiremock_version)"
    mkdir -p "$scratch/npm" "$(dirname "$jar")"
    (cd "$scratch/npm" && npm pack --silent "wiremock@$wiremock_version" >/dev/null) ||
        fail "npm pack wiremock@$wiremock_version failed"
    tar -xzf "$scratch/npm/wiremock-$wiremock_version.tgz" -C "$scratch/npm" ||
        fail "cannot unpack npm's wiremock-$wiremock_version.tgz"
    found="$(find "$scratch/npm/package" -name 'wiremock-standalone-*.jar' | head -1)"
    [ -n "$found" ] || fail "no wiremock-standalone-*.jar in npm's wiremock@$wiremock_version"
    mv "$found" "$jar.part" && mv "$jar.part" "$jar"
fi

# --- Build ---------------------------------------------------------------------------------
# The full run measures release builds. The tiny run only shows that every phase still works,
# so it takes the test profile, which `cargo test` has mostly built already (CI's minutes).
if [ "$tiny" = 1 ]; then
    say "building the benches (test profile: the tiny run's figures mean nothing)"
    built="$(cargo test --no-run --bench compare --bench memory --message-format=json-render-diagnostics)" ||
        fail "cargo could not build the benches"
else
    say "building the benches (release profile)"
    built="$(cargo bench --no-run --bench compare --bench memory --message-format=json-render-diagnostics)" ||
        fail "cargo could not build the benches"
fi
executable() {
    sed -n "s/.*\"name\":\"$1\".*\"executable\":\"\([^\"]*\)\".*/\1/p" <<<"$built" | tail -1
}
compare="$(executable compare)"
memory="$(executable memory)"
[ -x "$compare" ] && [ -x "$memory" ] || fail "cargo built no compare or memory bench executable"

# Runs a bench program in the background (so the trap can stop it) and fails when it fails.
run() {
    "$@" &
    pids=("$!")
    local status=0
    wait "$!" || status=$?
    pids=()
    [ "$status" = 0 ] || fail "$(basename "$1") failed (exit $status): see its messages above"
}

# --- Measure -------------------------------------------------------------------------------
export COMPARE_TINY="$tiny" COMPARE_PHASES="$phases" COMPARE_NGINX="$nginx" COMPARE_WRK="$wrk"
export COMPARE_JAVA="$java" COMPARE_WIREMOCK_JAR="$jar"
# The benches' scratch files (logs, nginx's configuration, hubmock's blob stores) go under
# this script's, which the trap removes whatever happens to them.
export TMPDIR="$scratch"
started="$(date +%s)"
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"
run "$compare" >>"$rows"

if [[ ",$phases," == *,memory,* ]]; then
    default_counts=10000,100000,300000
    [ "$tiny" = 1 ] && default_counts=100,200,300
    export COUNTS="${COMPARE_MEMORY_COUNTS:-$default_counts}"
    say "phase memory (the memory bench, pushes: $COUNTS)"
    run "$memory" >"$scratch/memory.txt"
    # The memory bench's lines: CONFIGURATION... PUSHES VmRSS VmHWM KEPT ELAPSEDs PUSHES/S.
    awk '
        function grouped(n,   s) {
            s = ""
            while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
            return n s
        }
        NR > 1 && NF >= 7 {
            name = $1
            for (i = 2; i <= NF - 6; i++) name = name " " $i
            printf "| RSS after %s pushes, %s | %s MiB (peak %s MiB, %s runs kept) | – | – | – | – |\n",
                grouped($(NF - 5)), name, $(NF - 4), $(NF - 3), grouped($(NF - 2))
        }' "$scratch/memory.txt" >>"$rows"
fi

# --- The table -----------------------------------------------------------------------------
echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)),"\
    "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r);"\
    "load average at the start $load_at_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Programs: hubmock $(git describe --always --dirty 2>/dev/null || echo '?') ($(rustc --version)),"\
    "$("$nginx" -v 2>&1 | sed 's/^nginx version: //'), $("$wrk" -v 2>&1 | head -1 | cut -d' ' -f1-2),"\
    "$("$java" -version 2>&1 | head -1), WireMock $wiremock_version"
echo "Settings: COMPARE_TINY=$tiny COMPARE_PHASES=$phases; the run took $(($(date +%s) - started)) s"
echo
echo "| measurement | hubmock | WireMock | nginx one hop | hubmock ÷ nginx | hubmock ÷ WireMock |"
echo "|---|---|---|---|---|---|"
cat "$rows"
echo
echo "† still arriving when the wait ended (COMPARE_DRAIN_SECS after the load): the rate while"
echo "saturated, with a backlog left. A ratio is hubmock's figure over the other's."
