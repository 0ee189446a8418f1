#!/bin/sh
# Stage 2 (PID 1 after switch_root, the host's /bin/sh): kernel file systems, cgroup2, modules for
# overlay rootfs and CNI, then either the job directly (cgroupfs driver) or systemd as PID 1 with the
# job as its one service (systemd driver). Its exit code and output land in /job.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
. /job/job.env
for m in overlay bridge veth br_netfilter; do modprobe "$m" 2>/dev/null || echo "berth-vm: modprobe $m failed"; done
hostname berth-vm
ip link set lo up
echo "berth-vm: stage 2 up after $(cut -d' ' -f1 /proc/uptime) s; cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
finish() {
  sync
  echo "berth-vm: done after $(cut -d' ' -f1 /proc/uptime) s"
  echo o > /proc/sysrq-trigger
  sleep 30
}
if [ "${BERTH_VM_INIT:-sh}" = systemd ]; then
  mkdir -p /run/systemd/system
  cat > /run/systemd/system/berth-job.service <<UNIT
[Unit]
Description=Berth VM job
DefaultDependencies=no
[Service]
Type=oneshot
Environment=PATH=$PATH
EnvironmentFile=/job/job.env
ExecStart=/bin/sh -c 'sh /job/job.sh > /job/output.log 2>&1; echo \$? > /job/exit-code; sync; echo o > /proc/sysrq-trigger'
UNIT
  echo "berth-vm: exec systemd"
  exec /lib/systemd/systemd --unit=berth-job.service --log-target=console --show-status=no
fi
sh /job/job.sh > /job/output.log 2>&1
echo $? > /job/exit-code
finish
