# What shipit runs on a systemd host, over ssh: `sh -c <this> shipit ROOT OP ARGS...`.
# Every argument is a checked word (a version, a name, a digest, a number) or quoted by
# shipit; anything longer (the service's environment, a record, a lock's labels, the
# archive) comes on stdin, so it never reaches a command line on either machine.
#
# Layout under ROOT:
#   releases/<version>/          an unpacked release (bin/<name> ...), `.shipit-release` last
#   current -> releases/<v>      the release of the newest running instance (renamed over)
#   incoming/<sha256>            a verified archive (`.part` while it arrives)
#   instances/<name>             -> ../releases/<v>: what the unit instance <unit>@<name> runs
#   instances/<name>.env         its environment (mode 600), instances/<name>.meta its labels
#   locks/<name>/labels          a held lock (mkdir is the atomic step)
#   records/<app>-<env>-r<N>.json, control/<app>-<env>
set -eu
umask 077
root=$1 op=$2
shift 2
mkdir -p "$root"
cd "$root"
mkdir -p releases incoming instances locks records control

fail() { echo "shipit-remote: $*" >&2; exit 3; }

# The helpers below run in subshells, `name() ( ... )`: sh has no local variables, and a
# helper's loop variable must never change the caller's (`repoint` once renamed the instance
# `restart` then reported, so a restored instance was routed to another one's port).

# SYSTEMCTL: the command systemctl is reached with, words separated by spaces (checked words).
ctl() { $SYSTEMCTL "$@"; }

# Points `current` at the release of the newest-revision instance that runs, through a new
# link renamed over the old one: a reader sees the old release or the new, never neither.
repoint() (
  best='' best_rev=-1
  for meta in instances/*.meta; do
    [ -e "$meta" ] || continue
    name=${meta#instances/}; name=${name%.meta}
    rev=$(sed -n 's/^revision=//p' "$meta")
    if ctl is-active --quiet "$UNIT@$name" 2>/dev/null && [ "$rev" -gt "$best_rev" ]; then
      best_rev=$rev best=$(sed -n 's/^release=//p' "$meta")
    fi
  done
  [ -n "$best" ] || return 0
  ln -sfn "releases/$best" current.new
  mv -T current.new current
)

# Keeps the newest KEEP releases by unpack time, and every release an instance or `current` uses.
prune() (
  keep=$1
  in_use=$(
    for m in instances/*.meta; do
      if [ -e "$m" ]; then sed -n 's/^release=//p' "$m"; fi
    done
    readlink current 2>/dev/null | sed 's|^releases/||' || true
  )
  n=0
  for dir in $(ls -1t releases); do
    case "$dir" in .*) continue ;; esac
    n=$((n + 1))
    [ "$n" -gt "$keep" ] || continue
    if ! printf '%s\n' $in_use | grep -qx "$dir"; then
      rm -f "incoming/$(cat "releases/$dir/.shipit-release" 2>/dev/null || echo none)"
      rm -rf "releases/$dir"
    fi
  done
)

meta() ( sed -n "s/^$2=//p" "instances/$1.meta" )

# NAME REVISION RELEASE PORT: the instance's labels, renamed into place.
label() (
  printf 'revision=%s\nrelease=%s\nport=%s\n' "$2" "$3" "$4" > "instances/$1.meta.new"
  mv "instances/$1.meta.new" "instances/$1.meta"
)

# NAME RELEASE: the instance's link to its release, renamed over the old one.
link() (
  ln -sfn "../releases/$2" "instances/$1.new"
  mv -T "instances/$1.new" "instances/$1"
)

show() (
  name=$1
  if ctl is-active --quiet "$UNIT@$name" 2>/dev/null; then state=running; else state=exited; fi
  printf 'instance\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(meta "$name" revision)" "$(meta "$name" release)" "$(meta "$name" port)" "$state"
)

case "$op" in
check)
  # What preflight needs: the machine, the free space, the tools, and the state of each
  # candidate archive SHA... (`yes` kept and whole, `tampered` kept and changed, `no`).
  printf 'arch\t%s\n' "$(uname -m)"
  printf 'free_kb\t%s\n' "$(df -Pk . | awk 'NR==2 {print $4}')"
  for sha in "$@"; do
    state=no
    if [ -e "incoming/$sha" ]; then
      state=tampered
      [ "$(sha256sum "incoming/$sha" | cut -d' ' -f1)" != "$sha" ] || state=yes
    fi
    printf 'staged %s\t%s\n' "$sha" "$state"
  done
  if command -v minisign >/dev/null 2>&1; then printf 'minisign\tyes\n'; else printf 'minisign\tno\n'; fi
  command -v "${SYSTEMCTL%% *}" >/dev/null 2>&1 || fail "no \`${SYSTEMCTL%% *}\` on this host"
  ;;
stage)
  # stdin: the archive. It is kept only once its digest (and the signed sums, when given)
  # say it is the release's.
  sha=$1
  shift
  [ ! -e "incoming/$sha" ] || fail "incoming/$sha is already there"
  cat > "incoming/$sha.part"
  got=$(sha256sum "incoming/$sha.part" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    rm -f "incoming/$sha.part"
    fail "the archive arrived as sha256 $got, not the manifest's $sha"
  fi
  if [ $# -ge 3 ]; then
    # PUBLIC_KEY SUMS_FILE SIG_FILE (base64): the signed checksums must name this digest.
    dir=$(mktemp -d incoming/.verify.XXXXXX)
    printf '%s' "$2" | base64 -d > "$dir/SHA256SUMS"
    printf '%s' "$3" | base64 -d > "$dir/SHA256SUMS.minisig"
    if ! minisign -Vq -P "$1" -m "$dir/SHA256SUMS" -x "$dir/SHA256SUMS.minisig" >/dev/null 2>&1; then
      rm -rf "$dir" "incoming/$sha.part"
      fail "the signature of SHA256SUMS does not verify with the release's public key"
    fi
    if ! cut -d' ' -f1 "$dir/SHA256SUMS" | grep -qx "$sha"; then
      rm -rf "$dir" "incoming/$sha.part"
      fail "the signed SHA256SUMS does not list sha256 $sha"
    fi
    rm -rf "$dir"
  fi
  mv "incoming/$sha.part" "incoming/$sha"
  ;;
unpack)
  # VERSION SHA BIN...: unpacks the verified archive into releases/VERSION, its one top
  # folder stripped and each BIN in bin/; marked complete last.
  version=$1 sha=$2
  shift 2
  if [ -e "releases/$version/.shipit-release" ]; then
    [ "$sha" = kept ] || [ "$(cat "releases/$version/.shipit-release")" = "$sha" ] || fail "releases/$version holds another build of $version"
    exit 0
  fi
  [ "$sha" != kept ] || fail "release $version is not kept on this host any more, and the manifest is for another version"
  [ -e "incoming/$sha" ] || fail "archive $sha was never staged"
  [ "$(sha256sum "incoming/$sha" | cut -d' ' -f1)" = "$sha" ] || fail "incoming/$sha changed since it was verified"
  rm -rf "releases/$version" "releases/.$version.new"
  mkdir "releases/.$version.new"
  tar -xzf "incoming/$sha" -C "releases/.$version.new" --no-same-owner
  top=$(ls -A "releases/.$version.new")
  if [ "$(printf '%s\n' "$top" | wc -l)" -eq 1 ] && [ -d "releases/.$version.new/$top" ] && [ ! -L "releases/.$version.new/$top" ]; then
    mv "releases/.$version.new" "releases/.$version.outer"
    mv "releases/.$version.outer/$top" "releases/.$version.new"
    rmdir "releases/.$version.outer"
  fi
  mkdir -p "releases/.$version.new/bin"
  for bin in "$@"; do
    new=releases/.$version.new
    if [ ! -e "$new/bin/$bin" ] && [ -f "$new/$bin" ] && [ ! -L "$new/$bin" ]; then mv "$new/$bin" "$new/bin/$bin"; fi
    [ -f "$new/bin/$bin" ] && [ -x "$new/bin/$bin" ] || { rm -rf "$new"; fail "the archive has no executable $bin"; }
  done
  printf '%s' "$sha" > "releases/.$version.new/.shipit-release"
  chmod -R go+rX "releases/.$version.new"
  mv -T "releases/.$version.new" "releases/$version"
  ;;
start)
  # NAME RELEASE REVISION BASE_PORT; stdin: the environment file. Picks the lowest free port
  # from BASE_PORT, links the instance to its release and starts the unit instance.
  name=$1 release=$2 revision=$3 port=$4
  [ -e "releases/$release/.shipit-release" ] || fail "release $release is not unpacked"
  while grep -qx "port=$port" instances/*.meta 2>/dev/null; do port=$((port + 1)); done
  cat > "instances/$name.env.new"
  printf 'PORT=%s\nBIND=%s\n' "$port" "$BIND" >> "instances/$name.env.new"
  mv "instances/$name.env.new" "instances/$name.env"
  label "$name" "$revision" "$release" "$port"
  link "$name" "$release"
  ctl start "$UNIT@$name" || fail "\`systemctl start $UNIT@$name\` failed"
  repoint
  show "$name"
  ;;
restart)
  name=$1
  [ -e "instances/$name.meta" ] || fail "no instance $name"
  ctl start "$UNIT@$name" || fail "\`systemctl start $UNIT@$name\` failed"
  repoint
  show "$name"
  ;;
stop)
  name=$1
  if [ -e "instances/$name.meta" ]; then
    ctl stop "$UNIT@$name" || fail "\`systemctl stop $UNIT@$name\` failed"
  fi
  repoint
  ;;
remove)
  # NAME KEEP
  name=$1
  if [ -e "instances/$name.meta" ]; then
    ctl stop "$UNIT@$name" 2>/dev/null || true
    rm -f "instances/$name" "instances/$name.env" "instances/$name.meta"
  fi
  repoint
  prune "$2"
  ;;
reload)
  # NAME RELEASE REVISION: the instance's link and `current` to RELEASE, then the unit's
  # reload (ExecReload=). An instance that no longer runs is started on RELEASE instead, and
  # one already running RELEASE is left alone, so the undo can send it back either way.
  name=$1 release=$2 revision=$3
  [ -e "instances/$name.meta" ] || fail "no instance $name"
  [ -e "releases/$release/.shipit-release" ] || fail "release $release is not unpacked"
  was=$(meta "$name" release)
  label "$name" "$revision" "$release" "$(meta "$name" port)"
  if [ "$was" = "$release" ] && ctl is-active --quiet "$UNIT@$name" 2>/dev/null; then
    show "$name"
    exit 0
  fi
  link "$name" "$release"
  if ctl is-active --quiet "$UNIT@$name" 2>/dev/null; then
    ctl reload "$UNIT@$name" || fail "\`systemctl reload $UNIT@$name\` failed"
  else
    ctl start "$UNIT@$name" || fail "\`systemctl start $UNIT@$name\` failed"
  fi
  repoint
  show "$name"
  ;;
list)
  for meta in instances/*.meta; do
    [ -e "$meta" ] || continue
    name=${meta#instances/}
    show "${name%.meta}"
  done
  ;;
lock)
  # NAME; stdin: the holder's labels (id=... first). mkdir is atomic: one taker wins.
  name=$1
  cat > "locks/.$name.labels.$$"
  if mkdir "locks/$name" 2>/dev/null; then
    mv "locks/.$name.labels.$$" "locks/$name/labels"
    echo taken
  else
    rm -f "locks/.$name.labels.$$"
    echo held
    cat "locks/$name/labels" 2>/dev/null || true
  fi
  ;;
holder)
  name=$1
  if [ -d "locks/$name" ]; then echo held; cat "locks/$name/labels" 2>/dev/null || true; fi
  ;;
unlock)
  # NAME ID: removes the lock only while it is still that holder's.
  name=$1 id=$2
  if [ -d "locks/$name" ] && grep -qx "id=$id" "locks/$name/labels" 2>/dev/null; then
    rm -rf "locks/$name"
    echo removed
  fi
  ;;
set-control)
  # APP-ENV; stdin: the command (empty: clear it).
  cat > "control/.$1.new"
  if [ -s "control/.$1.new" ]; then mv "control/.$1.new" "control/$1"; else rm -f "control/.$1.new" "control/$1"; fi
  ;;
control)
  cat "control/$1" 2>/dev/null || true
  ;;
add-record)
  # FILE; stdin: the record, one line of JSON.
  cat > "records/.$1.new"
  mv "records/.$1.new" "records/$1"
  ;;
records)
  # APP-ENV
  for f in records/"$1"-r*.json; do
    if [ -e "$f" ]; then cat "$f"; echo; fi
  done
  ;;
*)
  fail "unknown operation $op"
  ;;
esac
