#!/bin/sh
# The unit tests built for Windows (make test-windows: MinGW-w64's gcc, the Windows C
# runtime, winpthreads) run under Wine, through tests/run.sh as the native ones. Wine's
# first start creates its prefix in build/win/prefix. Prints "windows: N passed, N failed".
# Usage: tests/windows_check.sh build/win/test_*.exe
cd "$(dirname "$0")/.." || exit 1
wine=${WINE:-$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)}
if [ ! -x "$wine" ]; then
    echo "FAIL windows: no Wine (Debian: wine64) to run the tests"
    echo "windows: 0 passed, 1 failed"; exit 1
fi
export WINEPREFIX="$(pwd)/build/win/prefix" WINEDEBUG=-all
mkdir -p "$WINEPREFIX"
# Windows' text-mode stdout ends lines with CR LF: the wrapper drops the CRs (and keeps
# the program's exit status) so that tests/run.sh reads the summaries as it does natively.
cat > build/win/run_wine.sh <<WRAP
#!/bin/sh
out=\$("$wine" "\$@" 2>&1); status=\$?
printf '%s\\n' "\$out" | tr -d '\\r'
exit \$status
WRAP
chmod +x build/win/run_wine.sh
tests/run.sh --prefix build/win/run_wine.sh "$@" > build/win/run.log 2>&1; status=$?
grep -v ' passed, ' build/win/run.log | grep -v '^$' | head -n 40
grep -E ': [0-9]+ passed, [0-9]+ failed$' build/win/run.log
line=$(tail -n 1 build/win/run.log)
echo "windows: $line"
exit $status
