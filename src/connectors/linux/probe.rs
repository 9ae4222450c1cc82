//! Host metrics: load, memory, swap, disks and inodes per mount, top
//! processes, uptime, kernel, clock. The local host is read straight from
//! `/proc`, `/sys` and `statvfs`; a remote host answers one shell command that
//! prints the same `/proc` files, and both are parsed by the same functions
//! (`procfs-core` for the formats it knows).

use std::collections::BTreeMap;
use std::io::Cursor;

use procfs_core::FromRead;

/// Filesystem types that are not disks (pseudo, memory-backed or read-only images).
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "bpf",
    "securityfs",
    "debugfs",
    "tracefs",
    "mqueue",
    "hugetlbfs",
    "fusectl",
    "configfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "overlay",
    "squashfs",
    "efivarfs",
    "rpc_pipefs",
    "nfsd",
    "iso9660",
];

/// Usage of one mounted filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct MountUsage {
    pub mount: String,
    pub fstype: String,
    pub total_bytes: u64,
    pub avail_bytes: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

impl MountUsage {
    /// Fraction of the space in use, as `df` reports it (reserved blocks count as used).
    pub fn used_ratio(&self) -> f64 {
        ratio(
            self.total_bytes - self.avail_bytes.min(self.total_bytes),
            self.total_bytes,
        )
    }
    /// Fraction of the inodes in use.
    pub fn inode_ratio(&self) -> f64 {
        ratio(
            self.inodes_total - self.inodes_free.min(self.inodes_total),
            self.inodes_total,
        )
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One process, as `ps` would summarise it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUsage {
    pub pid: i32,
    pub comm: String,
    /// CPU time over the process's lifetime, in percent of one CPU (as `ps` computes `%CPU`).
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// Everything a poll learns about a host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel: String,
    pub os: String,
    pub cpus: u32,
    pub load: [f64; 3],
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    pub uptime_secs: f64,
    pub mounts: Vec<MountUsage>,
    pub top_cpu: Vec<ProcessUsage>,
    pub top_mem: Vec<ProcessUsage>,
    /// Host clock minus console clock, in seconds (0 for the local host).
    pub clock_skew_secs: f64,
    /// Modification time of the dpkg status database (to know when to re-read packages).
    pub dpkg_mtime: Option<i64>,
    /// Whether `rpm` is installed.
    pub has_rpm: bool,
}

impl HostFacts {
    /// Fraction of memory in use (1 − available / total).
    pub fn memory_ratio(&self) -> f64 {
        1.0 - ratio(self.mem_available_bytes, self.mem_total_bytes)
    }
    /// Fraction of swap in use.
    pub fn swap_ratio(&self) -> f64 {
        ratio(
            self.swap_total_bytes - self.swap_free_bytes.min(self.swap_total_bytes),
            self.swap_total_bytes,
        )
    }
    /// The fullest mount by space.
    pub fn fullest(&self) -> Option<&MountUsage> {
        self.mounts
            .iter()
            .max_by(|a, b| a.used_ratio().total_cmp(&b.used_ratio()))
    }
    /// The mount with the most inodes in use.
    pub fn fullest_inodes(&self) -> Option<&MountUsage> {
        self.mounts
            .iter()
            .max_by(|a, b| a.inode_ratio().total_cmp(&b.inode_ratio()))
    }

    /// Numbers for evidence and playbook conditions.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        m.insert("cpus".into(), self.cpus as f64);
        m.insert("load1".into(), self.load[0]);
        m.insert("load5".into(), self.load[1]);
        m.insert("load15".into(), self.load[2]);
        m.insert(
            "load_per_cpu".into(),
            self.load[0] / f64::from(self.cpus.max(1)),
        );
        m.insert("memory_usage_ratio".into(), self.memory_ratio());
        m.insert(
            "memory_available_mib".into(),
            (self.mem_available_bytes / (1 << 20)) as f64,
        );
        m.insert("swap_usage_ratio".into(), self.swap_ratio());
        m.insert(
            "disk_usage_ratio".into(),
            self.fullest().map(MountUsage::used_ratio).unwrap_or(0.0),
        );
        m.insert(
            "inode_usage_ratio".into(),
            self.fullest_inodes()
                .map(MountUsage::inode_ratio)
                .unwrap_or(0.0),
        );
        m.insert("uptime_secs".into(), self.uptime_secs);
        m.insert("clock_skew_secs".into(), self.clock_skew_secs);
        m
    }
}

/// A `/proc` text that did not parse, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ProbeError {
    pub file: String,
    pub reason: String,
}

fn bad(file: &str, reason: impl std::fmt::Display) -> ProbeError {
    ProbeError {
        file: file.to_string(),
        reason: reason.to_string(),
    }
}

/// `/proc/loadavg` → the three load averages.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], ProbeError> {
    let l = procfs_core::LoadAverage::from_read(Cursor::new(text))
        .map_err(|e| bad("/proc/loadavg", e))?;
    Ok([l.one as f64, l.five as f64, l.fifteen as f64])
}

/// `/proc/meminfo` → (total, available, swap total, swap free), in bytes.
pub fn parse_meminfo(text: &str) -> Result<(u64, u64, u64, u64), ProbeError> {
    let m =
        procfs_core::Meminfo::from_read(Cursor::new(text)).map_err(|e| bad("/proc/meminfo", e))?;
    // Kernels before 3.14 have no MemAvailable: free + page cache approximates it.
    let available = m.mem_available.unwrap_or(m.mem_free + m.cached + m.buffers);
    Ok((m.mem_total, available, m.swap_total, m.swap_free))
}

/// `/proc/uptime` → seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, ProbeError> {
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| bad("/proc/uptime", "expected seconds since boot"))
}

/// `PRETTY_NAME` from `/etc/os-release`.
pub fn parse_os_release(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// Concatenated `/proc/<pid>/stat` lines → the top `n` processes by CPU and by memory.
pub fn top_processes(
    stats: &str,
    uptime_secs: f64,
    ticks_per_sec: u64,
    page_size: u64,
    n: usize,
) -> (Vec<ProcessUsage>, Vec<ProcessUsage>) {
    let ticks = ticks_per_sec.max(1) as f64;
    let mut all: Vec<ProcessUsage> = stats
        .lines()
        .filter_map(|line| procfs_core::process::Stat::from_read(Cursor::new(line)).ok())
        .map(|s| {
            let cpu_secs = (s.utime + s.stime) as f64 / ticks;
            let age = (uptime_secs - s.starttime as f64 / ticks).max(1.0);
            ProcessUsage {
                pid: s.pid,
                comm: s.comm,
                cpu_percent: (cpu_secs / age * 100.0 * 10.0).round() / 10.0,
                rss_bytes: s.rss.saturating_mul(page_size),
            }
        })
        .collect();
    all.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(a.pid.cmp(&b.pid))
    });
    let by_cpu = all.iter().take(n).cloned().collect();
    all.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    let by_mem = all.into_iter().take(n).collect();
    (by_cpu, by_mem)
}

/// Whether a filesystem type is a real disk worth watching.
pub fn is_disk(fstype: &str) -> bool {
    !PSEUDO_FS.contains(&fstype) && !fstype.starts_with("fuse.")
}

/// How many top processes a poll keeps.
pub const TOP: usize = 5;

/// Reads this machine's facts directly from `/proc`, `/sys` and `statvfs`.
pub fn local() -> Result<HostFacts, ProbeError> {
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| bad(path, e));
    let load = parse_loadavg(&read("/proc/loadavg")?)?;
    let (mem_total, mem_avail, swap_total, swap_free) = parse_meminfo(&read("/proc/meminfo")?)?;
    let uptime = parse_uptime(&read("/proc/uptime")?)?;
    let mut stats = String::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                // A process may exit between listing and reading: skip it.
                if let Ok(s) = std::fs::read_to_string(entry.path().join("stat")) {
                    stats.push_str(s.trim_end());
                    stats.push('\n');
                }
            }
        }
    }
    let (top_cpu, top_mem) = top_processes(
        &stats,
        uptime,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
        TOP,
    );
    let mut mounts = Vec::new();
    let mut seen_devices = std::collections::BTreeSet::new();
    let mount_text = read("/proc/self/mounts")?;
    for line in mount_text.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mount), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !is_disk(fstype) {
            continue;
        }
        let mount = unescape_mount(mount);
        let Ok(st) = rustix::fs::statvfs(mount.as_str()) else {
            continue;
        };
        // Bind mounts show the same filesystem twice; keep the first.
        if st.f_blocks == 0 || !seen_devices.insert(st.f_fsid) {
            continue;
        }
        mounts.push(MountUsage {
            mount,
            fstype: fstype.to_string(),
            total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
            avail_bytes: st.f_bavail.saturating_mul(st.f_frsize),
            inodes_total: st.f_files,
            inodes_free: st.f_ffree,
        });
    }
    let dpkg_mtime = std::fs::metadata(super::packages::DPKG_STATUS)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    Ok(HostFacts {
        hostname: read("/proc/sys/kernel/hostname")?.trim().to_string(),
        kernel: read("/proc/sys/kernel/osrelease")?.trim().to_string(),
        os: std::fs::read_to_string("/etc/os-release")
            .map(|t| parse_os_release(&t))
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        load,
        mem_total_bytes: mem_total,
        mem_available_bytes: mem_avail,
        swap_total_bytes: swap_total,
        swap_free_bytes: swap_free,
        uptime_secs: uptime,
        mounts,
        top_cpu,
        top_mem,
        clock_skew_secs: 0.0,
        dpkg_mtime,
        has_rpm: which("rpm"),
    })
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// `/proc/mounts` escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The one command a remote host answers with its facts, section by section.
pub fn remote_script() -> String {
    let excluded: String = PSEUDO_FS.iter().map(|t| format!(" -x {t}")).collect();
    format!(
        "export LC_ALL=C; \
         echo @@files; head -n 100000 {files} 2>/dev/null; \
         echo @@getconf; getconf -a 2>/dev/null || echo \"_NPROCESSORS_ONLN $(getconf _NPROCESSORS_ONLN)\"; \
         echo @@df; df -P -B1 --output=target,fstype,size,avail,itotal,iavail{excluded} 2>/dev/null; \
         echo @@stat; cat /proc/[0-9]*/stat 2>/dev/null; \
         echo @@dpkg; stat -c %Y {dpkg} 2>/dev/null; \
         echo @@rpm; command -v rpm; \
         echo @@clock; date +%s.%N",
        dpkg = super::packages::DPKG_STATUS,
        files = REMOTE_FILES
            .iter()
            .map(|(_, path)| *path)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The small files a remote probe reads with one `head` (section name, path).
const REMOTE_FILES: &[(&str, &str)] = &[
    ("hostname", "/proc/sys/kernel/hostname"),
    ("kernel", "/proc/sys/kernel/osrelease"),
    ("loadavg", "/proc/loadavg"),
    ("meminfo", "/proc/meminfo"),
    ("uptime", "/proc/uptime"),
    ("os", "/etc/os-release"),
];

/// Splits `head`'s `==> PATH <==` output into one section per file, and
/// `getconf -a` into the values the probe needs.
fn expand_sections(sections: &mut BTreeMap<String, String>) {
    if let Some(files) = sections.remove("files") {
        let mut current: Option<&str> = None;
        for line in files.lines() {
            if let Some(path) = line
                .strip_prefix("==> ")
                .and_then(|l| l.strip_suffix(" <=="))
            {
                current = REMOTE_FILES
                    .iter()
                    .find(|(_, p)| *p == path)
                    .map(|(n, _)| *n);
                if let Some(name) = current {
                    sections.entry(name.to_string()).or_default();
                }
            } else if let Some(name) = current {
                let s = sections.entry(name.to_string()).or_default();
                s.push_str(line);
                s.push('\n');
            }
        }
        // `head` separates files with a blank line.
        for (name, _) in REMOTE_FILES {
            if let Some(s) = sections.get_mut(*name) {
                let trimmed = s.trim_end_matches('\n').to_string();
                *s = trimmed + "\n";
            }
        }
    }
    if let Some(conf) = sections.remove("getconf") {
        for line in conf.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.last()) else {
                continue;
            };
            let name = match key {
                "_NPROCESSORS_ONLN" => "cpus",
                "CLK_TCK" => "clk_tck",
                "PAGESIZE" => "pagesize",
                _ => continue,
            };
            sections.insert(name.to_string(), value.to_string());
        }
    }
}

/// Parses the answer to [`remote_script`]; `console_now` is the console's
/// clock (epoch seconds) halfway through the round trip.
pub fn parse_remote(text: &str, console_now: f64) -> Result<HostFacts, ProbeError> {
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            current = Some(name);
            sections.entry(name.to_string()).or_default();
        } else if let Some(name) = current {
            let s = sections.entry(name.to_string()).or_default();
            s.push_str(line);
            s.push('\n');
        }
    }
    expand_sections(&mut sections);
    let section = |name: &str| -> Result<&str, ProbeError> {
        sections.get(name).map(String::as_str).ok_or_else(|| {
            bad(
                "probe",
                format!("section `{name}` missing from the host's answer"),
            )
        })
    };
    let number = |name: &str| -> Result<u64, ProbeError> {
        section(name)?
            .trim()
            .parse::<u64>()
            .map_err(|_| bad("probe", format!("section `{name}` is not a number")))
    };
    let load = parse_loadavg(section("loadavg")?)?;
    let (mem_total, mem_avail, swap_total, swap_free) = parse_meminfo(section("meminfo")?)?;
    let uptime = parse_uptime(section("uptime")?)?;
    let (top_cpu, top_mem) = top_processes(
        section("stat")?,
        uptime,
        number("clk_tck").unwrap_or(100),
        number("pagesize").unwrap_or(4096),
        TOP,
    );
    let mounts = parse_df(section("df")?)?;
    let host_clock: Option<f64> = section("clock")?.trim().parse().ok();
    Ok(HostFacts {
        hostname: section("hostname")?.trim().to_string(),
        kernel: section("kernel")?.trim().to_string(),
        os: parse_os_release(section("os")?),
        cpus: number("cpus").unwrap_or(1) as u32,
        load,
        mem_total_bytes: mem_total,
        mem_available_bytes: mem_avail,
        swap_total_bytes: swap_total,
        swap_free_bytes: swap_free,
        uptime_secs: uptime,
        mounts,
        top_cpu,
        top_mem,
        clock_skew_secs: host_clock.map(|h| h - console_now).unwrap_or(0.0),
        dpkg_mtime: section("dpkg")?.trim().parse().ok(),
        has_rpm: !section("rpm")?.trim().is_empty(),
    })
}

/// `df -P -B1 --output=target,fstype,size,avail,itotal,iavail` → mounts.
fn parse_df(text: &str) -> Result<Vec<MountUsage>, ProbeError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        // The mount point may contain spaces: the five numbers are at the end.
        let n = f.len();
        let num = |s: &str| -> Result<u64, ProbeError> {
            if s == "-" {
                return Ok(0);
            }
            s.parse()
                .map_err(|_| bad("df", format!("line {}: `{s}` is not a number", i + 1)))
        };
        let mount = f[..n - 5].join(" ");
        let fstype = f[n - 5];
        if !is_disk(fstype) {
            continue;
        }
        let m = MountUsage {
            mount,
            fstype: fstype.to_string(),
            total_bytes: num(f[n - 4])?,
            avail_bytes: num(f[n - 3])?,
            inodes_total: num(f[n - 2])?,
            inodes_free: num(f[n - 1])?,
        };
        if m.total_bytes > 0 {
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_facts_are_read_from_this_machine() {
        let f = local().unwrap();
        assert!(f.cpus >= 1);
        assert!(f.mem_total_bytes > 0);
        assert!(f.mem_available_bytes <= f.mem_total_bytes);
        assert!(!f.kernel.is_empty());
        assert!(f.uptime_secs > 0.0);
        assert!(
            f.top_cpu.iter().chain(&f.top_mem).count() > 0,
            "this test's own process at least"
        );
        // statvfs of / agrees with what the test sees through rustix directly.
        let root = rustix::fs::statvfs("/").unwrap();
        if let Some(m) = f.mounts.iter().find(|m| m.mount == "/") {
            assert_eq!(m.total_bytes, root.f_blocks * root.f_frsize);
        }
    }

    #[test]
    fn local_script_output_parses_like_the_local_reader() {
        // The remote script, run here through sh, must agree with reading /proc directly.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(remote_script())
            .output()
            .unwrap();
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        let remote = parse_remote(&String::from_utf8_lossy(&out.stdout), now).unwrap();
        let local = local().unwrap();
        assert_eq!(remote.kernel, local.kernel);
        assert_eq!(remote.hostname, local.hostname);
        assert_eq!(remote.cpus, local.cpus);
        assert_eq!(remote.mem_total_bytes, local.mem_total_bytes);
        assert!(
            remote.clock_skew_secs.abs() < 5.0,
            "{}",
            remote.clock_skew_secs
        );
        let local_mounts: Vec<&str> = local.mounts.iter().map(|m| m.mount.as_str()).collect();
        for m in &remote.mounts {
            assert!(
                local_mounts.contains(&m.mount.as_str()),
                "{} not seen locally",
                m.mount
            );
        }
    }

    #[test]
    fn truncated_answer_names_the_missing_section() {
        let e = parse_remote("@@hostname\nh\n", 0.0).unwrap_err();
        assert!(e.to_string().contains("loadavg"), "{e}");
    }

    #[test]
    fn df_with_spaces_in_mount_points() {
        let m = parse_df(
            "Mounted on Type 1B-blocks Avail Inodes IFree\n/ ext4 1000 100 50 5\n/mnt/my disk xfs 2000 1000 - -\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount, "/mnt/my disk");
        assert!((m[0].used_ratio() - 0.9).abs() < 1e-9);
        assert!((m[0].inode_ratio() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn cpu_percent_is_lifetime_average_like_ps() {
        // pid 42 used 50 s of CPU (5000 ticks) over 100 s of life.
        let line = "42 (my (odd) proc) S 1 1 1 0 -1 0 0 0 0 0 3000 2000 0 0 20 0 1 0 10000 0 25 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let (cpu, mem) = top_processes(line, 200.0, 100, 4096, 5);
        assert_eq!(cpu[0].comm, "my (odd) proc");
        assert_eq!(cpu[0].cpu_percent, 50.0);
        assert_eq!(mem[0].rss_bytes, 25 * 4096);
    }
}
