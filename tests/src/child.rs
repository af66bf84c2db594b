//! The real `switchboard` binary as a child process, for tests and the load
//! driver where a crash, a restart or the release build matters.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Bound for a child to answer `/readyz` (it compiles the plugins first).
pub const START: Duration = Duration::from_secs(120);

/// A `switchboard serve` child process; killed when dropped.
pub struct ChildHost {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl ChildHost {
    /// Start `binary` with `config` (its `listen = "127.0.0.1:0"` replaced by
    /// a free port), written to `{dir}/{name}.toml`; stderr goes to
    /// `{dir}/{name}.log`. Returns once `/readyz` answers 200; panics with
    /// the log otherwise.
    pub async fn start(binary: &Path, config: &str, dir: &Path, name: &str) -> ChildHost {
        let port = free_port();
        let config = config.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let host = ChildHost { child, url: format!("http://127.0.0.1:{port}") };
        host.wait_ready(dir, name).await;
        host
    }

    async fn wait_ready(&self, dir: &Path, name: &str) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START;
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} did not become ready; log:\n{}", std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default());
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "the host did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What `/proc/{pid}` says about a process's memory and CPU (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
}

impl ProcessStats {
    /// Read the stats of `pid`; zeroes where `/proc` is unavailable.
    pub fn of(pid: u32) -> ProcessStats {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status.lines().find_map(|line| line.strip_prefix(key)).and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0)
                * 1024
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // USER_HZ is 100 on every Linux this runs on.
        let cpu_seconds = (ticks(11) + ticks(12)) as f64 / 100.0;
        ProcessStats { rss: kib("VmRSS:"), peak_rss: kib("VmHWM:"), cpu_seconds }
    }
}
