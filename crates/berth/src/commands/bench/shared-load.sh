# A task's share of a fixed load (busybox sh): take one of $TOKENS tokens (a directory made
# with mkdir, which is atomic, in the volume every task mounts at /load) and burn all the
# CPU the task may use while holding it; wait while none is free. Give the token back on
# SIGTERM (a stopped task) and when /load/stop appears (the load ends), then idle.
held=
trap '[ -n "$held" ] && rmdir /load/t$held; exit 0' TERM
while [ ! -e /load/stop ]; do
  if [ -n "$held" ]; then :; else
    for i in $(seq 1 $TOKENS); do mkdir /load/t$i 2>/dev/null && held=$i && break; done
    [ -n "$held" ] || sleep 1
  fi
done
[ -n "$held" ] && rmdir /load/t$held
held=
while :; do sleep 1; done
