# Runs one TAP test script (the SH_LOG_COMPILER of make check) and fails it when any process it
# started wrote a sanitizer report. The scripts capture caback's stderr into files they only show
# on a failed check, so a report there could go unseen; here every report goes to its own file
# (log_path), which is printed into the test's log, and the script then exits with status 86.
#
# Usage: SHELL sanitizer-run.sh SHELL SCRIPT [ARGS...]
# Without sanitizers nothing is ever written and the script's own status is returned unchanged.
# shellcheck shell=sh

shell=$1
script=$2
shift 2

base=$(basename "$script" .sh)
dir=$(mktemp -d "${CABACK_BUILDDIR:-.}/tests/$base.sanitizer.XXXXXX.tmp") || exit 99

# Options given later in the string win, so this only adds the report file to the options the
# test environment (Makefile.am, AM_TESTS_ENVIRONMENT) set. A process writes "<path>.<pid>".
# GCC's UBSan inside ASan ignores log_path and prints to stderr; its exit status (86) still fails
# the check that runs the command.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/asan"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
"$shell" "$script" "$@" || status=$?

reports=$(find "$dir" -type f -size +0 | sort)
if [ -n "$reports" ]; then
    echo "# sanitizer reports were written while running $script:"
    for f in $reports; do
        echo "# ---- $(basename "$f")"
        sed 's/^/# /' "$f"
    done
    # Also on stderr, which the log keeps verbatim.
    for f in $reports; do cat "$f" >&2; done
    [ "$status" -eq 0 ] && status=86
fi
rm -rf "$dir"
exit "$status"
