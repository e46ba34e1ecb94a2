#!/bin/bash
# make install and make uninstall with DESTDIR: the binary, the manual page, the bash completion,
# the systemd units and the example settings, the guides; the units pass systemd-analyze verify;
# the completion offers every verb and every option the binary's help lists; the RPM spec's
# %files list is what make install installs.
. "$CABACK_SRCDIR/tests/lib.sh"
need make

# The configured install folders, as make expands them.
# (Run outside make check's own make: its MAKEFLAGS would add "Entering directory" lines.)
make_var() {
    printf 'print-var:\n\t@echo $(%s)\n' "$1" |
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory \
            -C "$CABACK_BUILDDIR" -f Makefile -f - print-var
}
prefix=$(make_var prefix)
bindir=$(make_var bindir)
sysconfdir=$(make_var sysconfdir)
docdir=$(make_var docdir)
mandir=$(make_var mandir)
datadir=$(make_var datadir)
unitdir=$(make_var systemdsystemunitdir)
bcdir=$(make_var bashcompletiondir)

dest=$TEST_TMP/root
run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$CABACK_BUILDDIR" install DESTDIR="$dest"
expect_equal "make install DESTDIR= succeeds" 0 "$STATUS"
[ "$STATUS" -eq 0 ] || diag "$(tail -20 "$ERR")"
for f in "$bindir/caback" "$mandir/man1/caback.1" "$bcdir/caback" \
    "$unitdir/caback-backup.service" "$unitdir/caback-backup.timer" \
    "$unitdir/caback-verify.service" "$unitdir/caback-verify.timer" \
    "$sysconfdir/caback/caback.conf" "$docdir/README.md" "$docdir/SECURITY.md" \
    "$docdir/migrate.md" "$docdir/design.md" "$docdir/custody.md"; do
    check "installed: $f" test -f "$dest$f"
done
expect_status 0 "the installed binary runs" "$dest$bindir/caback" --version
expect_grep "the backup service runs the installed binary" "exec $bindir/caback backup" \
    "$dest$unitdir/caback-backup.service"
expect_grep "the services read the installed settings" "^EnvironmentFile=$sysconfdir/caback/caback.conf\$" \
    "$dest$unitdir/caback-verify.service"
for u in caback-backup.service caback-verify.service; do
    for setting in ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes ReadWritePaths=/var/lib/caback; do
        expect_grep "$u: $setting" "^$setting\$" "$dest$unitdir/$u"
    done
done

if command -v systemd-analyze >/dev/null 2>&1; then
    run systemd-analyze verify --man=no "$dest$unitdir"/caback-backup.service \
        "$dest$unitdir"/caback-backup.timer "$dest$unitdir"/caback-verify.service \
        "$dest$unitdir"/caback-verify.timer
    if [ "$STATUS" -eq 0 ] && [ ! -s "$ERR" ]; then ok "systemd-analyze verify: the four units are clean"; else
        not_ok "systemd-analyze verify: exit $STATUS"; diag "$(cat "$ERR")"; fi
else
    skip "systemd-analyze verify" "systemd-analyze is not installed"
fi

# ---- bash completion ----
bc=/usr/share/bash-completion/bash_completion
if [ -r "$bc" ]; then
    # complete WORDS...: the completions bash offers for the command line "WORDS" (the last
    # word is the one being completed), one a line.
    complete_line() {
        bash -c '. "$1"; . "$2"; shift 2
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
            _caback caback "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf "%s\n" "${COMPREPLY[@]}"' _ "$bc" "$dest$bcdir/caback" "$@" 2>&1
    }
    verbs=$("$CABACK" help | awk '/^Verbs:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}')
    offered=$(complete_line "$CABACK" "")
    missing=$(comm -23 <(echo "$verbs" | sort) <(echo "$offered" | sort) | tr '\n' ' ')
    expect_equal "completion offers every verb of caback help" "" "$missing"
    expect_equal "caback help <TAB> offers the verbs" "$(echo "$verbs" | sort)" \
        "$(complete_line "$CABACK" help "" | sort)"
    total=0
    for v in $verbs; do
        opts=$("$CABACK" help "$v" | grep -oE '^  (-[A-Za-z], )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+' | sort -u)
        got=$(complete_line "$CABACK" "$v" "--" | sed 's/=$//' | sort -u)
        missing=$(comm -23 <(echo "$opts") <(echo "$got") | tr '\n' ' ')
        total=$((total + $(echo "$opts" | wc -l)))
        expect_equal "caback $v --<TAB> offers every option of caback help $v" "" "$missing"
    done
    diag "$total options of $(echo "$verbs" | wc -w) verbs offered"
    mkdir -p "$TEST_TMP/cdir/alias.d"
    got=$(cd "$TEST_TMP/cdir" && complete_line "$CABACK" backup -d "")
    expect_equal "caback backup -d <TAB> offers folders" "alias.d" "$got"
    expect_equal "caback restore <TAB> offers automatic" "automatic" \
        "$(cd "$TEST_TMP/cdir" && complete_line "$CABACK" restore "au")"
else
    skip "bash completion" "bash-completion is not installed"
fi

# ---- the RPM spec's file list is make install's ----
if command -v rpmspec >/dev/null 2>&1; then
    run rpmspec -P --define "_prefix $prefix" --define "_exec_prefix $prefix" \
        --define "_sysconfdir $sysconfdir" --define "_unitdir $unitdir" \
        --define "bash_completions_dir $bcdir" \
        --define "_mandir $mandir" --define "_datadir $datadir" "$CABACK_SRCDIR/caback.spec"
    expect_equal "rpmspec -P parses caback.spec" 0 "$STATUS"
    sed -n '/^%files/,/^%changelog/p' "$OUT" | sed '1d;$d' | grep -v '^%dir ' |
        sed 's/^%config(noreplace) //; s/^%doc //' | grep . >"$TEST_TMP/spec-files"
    (cd "$dest" && find . -type f | sed 's|^\.||' | sort) >"$TEST_TMP/installed"
    unlisted=""
    while read -r f; do
        hit=""
        while read -r pattern; do
            # shellcheck disable=SC2053
            [[ $f == $pattern ]] && hit=1 && break
        done <"$TEST_TMP/spec-files"
        [ -n "$hit" ] || unlisted="$unlisted $f"
    done <"$TEST_TMP/installed"
    expect_equal "every installed file is in the spec's %files" "" "$unlisted"
    absent=""
    while read -r pattern; do
        # shellcheck disable=SC2086
        compgen -G "$dest$pattern" >/dev/null || absent="$absent $pattern"
    done <"$TEST_TMP/spec-files"
    expect_equal "every file of the spec's %files is installed" "" "$absent"
else
    skip "rpmspec -P" "rpm is not installed"
fi

run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$CABACK_BUILDDIR" uninstall DESTDIR="$dest"
expect_equal "make uninstall DESTDIR= succeeds" 0 "$STATUS"
expect_equal "make uninstall leaves no file behind" "" "$(find "$dest" -type f -o -type l)"
done_testing
