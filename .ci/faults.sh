#!/usr/bin/env bash
# Fault scripts with real tools, run by .ci/run as root (CI=true):
#   (a) strace -e inject=write:error=ENOSPC on the active file: no panic, exit 0, errors reported
#   (b) strace -e inject=fsync,fdatasync:error=EIO: no panic, sync() returns the error
#   (c) faketime clock jumps (+1 day, then 1 hour back) during daily/hourly rotation,
#       inside one run and across restarts: no overwrite, no lost line; the printed times
#       follow a step of the system clock within 100 ms of logging
#   (d) logrotate in `create` mode with a postrotate SIGHUP -> guard.reopen(): nothing lost
# Prints one PASS/FAIL line per check; exits non-zero if any check failed.
set -uo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "FAIL: missing tools (${need[*]}) and not root to install them"
        exit 1
    fi
    echo "installing: ${need[*]}"
    apt-get update -qq && apt-get install -y -qq strace faketime logrotate gzip >/dev/null || {
        echo "FAIL: apt-get install ${need[*]}"
        exit 1
    }
fi

cargo build --quiet --example fault_target || { echo "FAIL: build examples/fault_target"; exit 1; }
BIN="$(pwd)/target/debug/examples/fault_target"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
# field NAME LINE: the value of NAME=... in a summary line
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
no_panic() { ! grep -q "panicked" "$1"; }

# ---------------------------------------------------------------- (a) write ENOSPC
d="$WORK/a"; mkdir -p "$d"; touch "$d/app.log"
out=$(strace -f -qq -o /dev/null -e trace=write -e inject=write:error=ENOSPC:when=20+ \
    -P "$d/app.log" "$BIN" write "$d" 5000 2>"$WORK/a.err"); rc=$?
echo "  $out" | head -1
we=$(field write_errors "$out"); fe=$(field flush_errors "$out")
wr=$(field written "$out"); dr=$(field dropped "$out")
if [ $rc -ne 0 ]; then fail "(a) write ENOSPC: exit code $rc"; cat "$WORK/a.err"
elif ! no_panic "$WORK/a.err"; then fail "(a) write ENOSPC: panicked"; cat "$WORK/a.err"
elif [ "${we:-0}" -lt 1 ] || [ "${fe:-0}" -lt 1 ]; then fail "(a) write ENOSPC: errors not reported ($out)"
elif [ $((wr + dr)) -ne 5000 ]; then fail "(a) write ENOSPC: written $wr + dropped $dr != 5000 events"
else pass "(a) write ENOSPC from the 20th write: exit 0, no panic, write_errors=$we, flush errors=$fe, written+dropped=5000"
fi
if v=$("$BIN" verify "$d" -); then pass "(a) no torn line after ENOSPC ($v)"; else fail "(a) $v"; fi
out=$(FAULT_RUN=2 "$BIN" write "$d" 100 2>"$WORK/a2.err")
if [ "$(field write_errors "$out")" = 0 ] && [ "$(field shutdown "$out")" = ok ] && "$BIN" verify "$d" - >/dev/null; then
    pass "(a) restart without faults writes cleanly"
else fail "(a) restart without faults: $out"; fi

# ---------------------------------------------------------------- (b) fsync EIO
d="$WORK/b"; mkdir -p "$d"
out=$(strace -f -qq -o /dev/null -e trace=fsync,fdatasync -e inject=fsync,fdatasync:error=EIO \
    "$BIN" fsync "$d" 1000 2>"$WORK/b.err"); rc=$?
echo "  $out" | head -1
se=$(field sync_errors "$out")
if [ $rc -ne 0 ]; then fail "(b) fsync EIO: exit code $rc"; cat "$WORK/b.err"
elif ! no_panic "$WORK/b.err"; then fail "(b) fsync EIO: panicked"; cat "$WORK/b.err"
elif [ "${se:-0}" -lt 1 ]; then fail "(b) fsync EIO: sync() never returned the error ($out)"
else pass "(b) fsync EIO: exit 0, no panic, sync() returned errors $se times"
fi
# fsync failed, but every write succeeded: all 1000 events are in the files.
if v=$("$BIN" verify "$d" 1000); then pass "(b) nothing lost or torn after fsync errors ($v)"; else fail "(b) $v"; fi

# ---------------------------------------------------------------- (c) faketime jumps
LIBFT=$(dpkg -L libfaketime 2>/dev/null | grep 'libfaketimeMT.so.1$' | head -1)
[ -n "$LIBFT" ] || LIBFT=$(find / -name 'libfaketimeMT.so.1' 2>/dev/null | head -1)
segments() { find "$1" -maxdepth 1 -name 'app.[0-9]*.log*' | wc -l; }
for rot in daily hourly; do
    # Inside one run: the clock jumps forward a day, then back an hour.
    d="$WORK/c-$rot"; mkdir -p "$d"; rc_file="$WORK/c-$rot.rc"
    echo "+0" >"$rc_file"
    LD_PRELOAD="$LIBFT" FAKETIME_TIMESTAMP_FILE="$rc_file" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
        "$BIN" time "$d" "$rot" 30 100 >"$WORK/c.out" 2>"$WORK/c.err" &
    pid=$!
    sleep 1; echo "+1d" >"$rc_file"     # driving the fake clock, not synchronizing
    sleep 1; echo "+23h" >"$rc_file"
    wait $pid; rc=$?
    out=$(cat "$WORK/c.out"); n=$(field logged "$out"); r=$(field rotations "$out")
    if [ $rc -ne 0 ] || ! no_panic "$WORK/c.err"; then fail "(c) $rot, jumps in one run: exit $rc"; cat "$WORK/c.err"
    elif [ "${r:-0}" -lt 1 ] || [ "$(segments "$d")" -lt 1 ]; then fail "(c) $rot: no rotation after +1 day ($out)"; ls -l "$d"
    elif v=$("$BIN" verify "$d" "$n"); then pass "(c) $rot, +1 day then -1 hour in one run: $r rotations, $v"
    else fail "(c) $rot, jumps in one run: $v"; ls -l "$d"
    fi
    # Across restarts, with faketime -f: now, a day later, an hour before that.
    d="$WORK/c2-$rot"; mkdir -p "$d"; total=0; ok=1
    i=0
    for offset in "+0" "+1d" "+23h"; do
        i=$((i + 1))
        out=$(FAULT_RUN=$i DONT_FAKE_MONOTONIC=1 faketime -m -f "$offset" "$BIN" time "$d" "$rot" 5 0 2>"$WORK/c2.err") || ok=0
        no_panic "$WORK/c2.err" || ok=0
        total=$((total + $(field logged "$out")))
    done
    if [ $ok -ne 1 ]; then fail "(c) $rot, jumps across restarts: a run failed"; cat "$WORK/c2.err"
    elif [ "$(segments "$d")" -lt 1 ]; then fail "(c) $rot, restarts: no segment after a day"; ls -l "$d"
    elif v=$("$BIN" verify "$d" "$total"); then pass "(c) $rot, restarts at +0, +1 day, +23 h (faketime -f): $(segments "$d") segments, $v"
    else fail "(c) $rot, jumps across restarts: $v"; ls -l "$d"
    fi
done

# The printed times follow a step of the system clock (+1 day, then 1 hour back) within
# 100 ms of logging, never show it before it happened, and keep the file's order.
d="$WORK/c3"; mkdir -p "$d"
out=$(LD_PRELOAD="$LIBFT" FAKETIME_TIMESTAMP_FILE="$WORK/c3.ft" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
    "$BIN" step "$d" "$WORK/c3.ft" 2>"$WORK/c3.err"); rc=$?
if [ $rc -ne 0 ] || ! no_panic "$WORK/c3.err"; then fail "(c) clock steps in the printed times: exit $rc: $out"; cat "$WORK/c3.err"
else pass "(c) clock steps in the printed times: $out"
fi

# ---------------------------------------------------------------- (d) logrotate + SIGHUP
d="$WORK/d"; mkdir -p "$d"; chmod 700 "$d"; pidfile="$WORK/d.pid"
conf="$WORK/logrotate.conf"
cat >"$conf" <<EOF
$d/app.log {
    create 0600 root root
    rotate 50
    missingok
    nocompress
    postrotate
        kill -HUP "\$(cat $pidfile)"
    endscript
}
EOF
chmod 644 "$conf"
"$BIN" sighup "$d" "$pidfile" 60 50 >"$WORK/d.out" 2>"$WORK/d.err" &
pid=$!
for _ in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
lr_ok=1
for _ in 1 2 3; do
    sleep 0.5   # let some events land between rotations
    logrotate -f -s "$WORK/logrotate.state" "$conf" 2>>"$WORK/d.err" || lr_ok=0
done
wait $pid; rc=$?
out=$(cat "$WORK/d.out"); n=$(field logged "$out"); reopens=$(field reopens "$out")
rotated=$(find "$d" -maxdepth 1 -name 'app.log.[0-9]*' | wc -l)
if [ $lr_ok -ne 1 ]; then fail "(d) logrotate failed"; cat "$WORK/d.err"
elif [ $rc -ne 0 ] || ! no_panic "$WORK/d.err"; then fail "(d) example exit $rc"; cat "$WORK/d.err"
elif [ "$rotated" -lt 3 ] || [ "${reopens:-0}" -lt 3 ]; then fail "(d) expected 3 rotations and reopens, got $rotated files, $reopens reopens"; ls -l "$d"
elif v=$("$BIN" verify "$d" "$n"); then pass "(d) logrotate create mode x3 + SIGHUP reopen: $reopens reopens, $v"
else fail "(d) logrotate: $v"; ls -l "$d"
fi

if [ $FAILED -ne 0 ]; then
    echo "faults.sh: FAILED"
    exit 1
fi
echo "faults.sh: all fault checks passed"
