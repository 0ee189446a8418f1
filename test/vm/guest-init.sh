#!/bin/busybox sh
# Stage 1, /init of the test initramfs (busybox + the 9p/virtio modules). Mounts the host's root
# read-only (9p tag "host") and the job directory read-write (tag "job"), builds a tmpfs root out of
# read-only binds of the host's top-level directories plus private /tmp /var /run, and switches to
# it to run the job's stage 2 (guest-run.sh) with the host's own binaries (node, runc, CNI plugins).
# runc needs a real root to pivot_root from: the initramfs itself cannot be one.
/bin/busybox mkdir -p /bin /proc /sys /dev
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "berth-vm: $*" > /dev/console; }
for m in $(cat /modules.order); do insmod "/modules/$m" || say "insmod $m failed"; done
mkdir -p /host /job /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose host /host || { say "mount host share failed"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 job /job || { say "mount job share failed"; poweroff -f; }
mount -t tmpfs -o mode=755 root /newroot
cd /newroot
mkdir -p proc sys dev tmp var run job
# Every top-level directory of the host, read-only, except the kernel's and the writable ones;
# top-level symlinks (/bin -> usr/bin on Debian 12) are recreated as they are.
for p in /host/*; do
  d=${p#/host/}
  case "$d" in proc|sys|dev|run|tmp|var|boot|lost+found|mnt|media|job) continue ;; esac
  if [ -L "$p" ]; then ln -s "$(readlink "$p")" "/newroot/$d"
  elif [ -d "$p" ]; then mkdir -p "/newroot/$d" && mount --bind "$p" "/newroot/$d"; fi
done
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs -o mode=755 var /newroot/var
mount -t tmpfs -o mode=755 run /newroot/run
mkdir -p /newroot/var/tmp /newroot/var/lib /newroot/var/log && chmod 1777 /newroot/var/tmp
mount --move /job /newroot/job
# Host paths the job needs that live under a skipped directory (a repo under /var/lib, say): read-only binds.
if [ -f /newroot/job/binds.list ]; then
  while read -r p; do [ -n "$p" ] && [ -d "/host$p" ] && mkdir -p "/newroot$p" && mount --bind "/host$p" "/newroot$p"; done < /newroot/job/binds.list
fi
# Whatever the job asks to copy from the host into the guest's writable /var/tmp (e.g. a fixture).
if [ -f /newroot/job/copy.list ]; then
  while read -r p; do [ -n "$p" ] && [ -e "/host$p" ] && mkdir -p "/newroot$(dirname "$p")" && cp -a "/host$p" "/newroot$p"; done < /newroot/job/copy.list
fi
say "stage 1 done after $(cut -d' ' -f1 /proc/uptime) s"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh /job/run.sh
