# bash completion for caback(1). -*- shell-script -*-
#
# The verbs and each verb's options are read from caback itself ("caback help" and
# "caback help VERB"), so the completion always offers what the installed binary accepts.

_caback_verbs()
{
    "$1" help 2>/dev/null | awk '/^Verbs:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}'
}

# The long and short options of one verb, one a line, as its help prints them.
_caback_options()
{
    "$1" help "$2" 2>/dev/null | awk '
        /^  -/ {
            for (i = 1; i <= NF; i++) {
                w = $i
                if (w !~ /^-/) break
                sub(/,$/, "", w)
                sub(/=.*/, "", w)
                print w
            }
        }'
}

# Does option $3 of verb $2 take a value? (its help entry shows "--option=VALUE")
_caback_takes_value()
{
    "$1" help "$2" 2>/dev/null | awk -v opt="$3" '
        /^  -/ {
            names = ""; value = 0
            for (i = 1; i <= NF; i++) {
                w = $i
                if (w !~ /^-/) break
                sub(/,$/, "", w)
                if (w ~ /=/) value = 1
                sub(/=.*/, "", w)
                names = names " " w " "
            }
            if (index(names, " " opt " ") && value) found = 1
        }
        END { exit !found }'
}

_caback()
{
    local cur prev words cword
    _init_completion -n = || return

    local caback=${words[0]}
    local verb="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -K) verb=listkeys; break ;;
            -backup) verb=backup; break ;;
            -restore) verb=restore; break ;;
            help) verb=help; break ;;
            -*) ;;
            *) verb=${words[i]}; break ;;
        esac
    done

    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$(_caback_verbs "$caback") help --version --help -K -backup -restore" -- "$cur"))
        return
    fi
    if [[ $verb == help ]]; then
        COMPREPLY=($(compgen -W "$(_caback_verbs "$caback")" -- "$cur"))
        return
    fi

    # The value of an option: folders for -d, files for the rest, nothing to offer for numbers.
    if [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    elif [[ $prev != -* ]] || ! _caback_takes_value "$caback" "$verb" "$prev"; then
        prev=""
    fi
    case $prev in
        -d | --dbdir | --custodian-dir) _filedir -d; return ;;
        --custodian) _filedir '@(pem|crt|cer|der)'; return ;;
        --token | -h | --p12-password-env | --password-env | --iterations | --mac | --wait | \
            --max-input-size | --max-kdf-work | --max-age | --split | -n | --nickname | -t | --trust)
            return ;;
        "") ;;
        *) _filedir; return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_caback_options "$caback" "$verb")" -- "$cur"))
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
        return
    fi
    case $verb in
        keyid) return ;;
        share-open) _filedir p7m; return ;;
        restore) [[ $cword -eq $((i + 1)) ]] && COMPREPLY=($(compgen -W automatic -- "$cur")) ;;
    esac
    _filedir
}
complete -F _caback caback
