//! Serving the HTTP API until shutdown.

use crate::app::App;
use crate::config::Config;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct Server {
    app: Arc<App>,
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Start everything and begin listening on `config.listen`.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let app = App::start(&config).await?;
        app.run(&config);
        let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = crate::http::router(Arc::clone(&app));
        let limits = crate::http::serve::ServerLimits {
            header_timeout: Duration::from_millis(config.server.header_timeout_ms),
            max_connections: config.server.max_connections,
        };
        let task = tokio::spawn(async move {
            crate::http::serve::serve(listener, router, limits, async { drop(stopped.await) }).await;
            Ok(())
        });
        tracing::info!(%local_addr, store = %crate::store::describe(&config.store), connectors = config.connectors.len(), "switchboard listening");
        Ok(Self { app, local_addr, stop, task })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The running host's state (connectors, runtime, store), e.g. to run
    /// plugin actions.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stop accepting requests, wait for in-flight ones, let running jobs
    /// finish within the grace period and hand the rest back to the queue.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.app.stop().await;
    }

    /// Serve until the task ends (or ctrl-c is handled by the caller).
    pub async fn wait(self) -> anyhow::Result<()> {
        Ok(self.task.await??)
    }
}
