//! The control socket of a running program: a unix stream socket at a path the user chooses
//! (`--control PATH`). A caller connects, writes one command line (`monitor`, `sessions`),
//! reads the answer (text) until the program closes the connection.
//!
//! The answer is produced by a callback from the program's current snapshot, so the socket
//! never blocks the runtimes. Commands and answers are bounded (a command line is at most
//! 256 bytes; a connection that sends nothing within 5 seconds is dropped).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::debug;

/// Longest command line read.
const MAX_COMMAND: u64 = 256;
/// How long a caller may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read by [`query`].
const MAX_ANSWER: u64 = 1 << 20;

/// Produces the answer to a command.
pub type Handler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A listening control socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Listens at `path` (an old socket file there is replaced) and answers each connection
    /// with `handler`, on a task of the current runtime.
    ///
    /// # Errors
    ///
    /// Binding the socket fails.
    pub fn bind(path: &Path, handler: Handler) -> io::Result<Self> {
        let named = |error| crate::cli::named(path.display(), error);
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(path).map_err(named)?;
        }
        let listener = UnixListener::bind(path).map_err(named)?;
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let handler = Arc::clone(&handler);
                        tokio::spawn(async move {
                            if let Err(error) = answer(stream, handler).await {
                                debug!("control connection: {error}");
                            }
                        });
                    }
                    Err(error) => {
                        debug!("control socket: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(ControlServer {
            path: path.to_owned(),
            task,
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        std::fs::remove_file(&self.path).ok();
    }
}

async fn answer(stream: UnixStream, handler: Handler) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_COMMAND));
    tokio::time::timeout(COMMAND_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no command"))??;
    let text = handler(line.trim());
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Sends `command` to the control socket at `path` and returns the answer.
///
/// # Errors
///
/// Connecting, writing or reading fails (no program listening, say).
pub async fn query(path: &Path, command: &str) -> io::Result<String> {
    let stream = UnixStream::connect(path).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(command.as_bytes()).await?;
    write.write_all(b"\n").await?;
    let mut answer = String::new();
    read.take(MAX_ANSWER).read_to_string(&mut answer).await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_commands() {
        let path = std::env::temp_dir().join(format!("pppoe-control-{}.sock", std::process::id()));
        let server = ControlServer::bind(
            &path,
            Arc::new(|command: &str| format!("you said {command}\n")),
        )
        .expect("bind");
        assert_eq!(
            query(&path, "monitor").await.expect("query"),
            "you said monitor\n"
        );
        assert_eq!(
            query(&path, "sessions").await.expect("query"),
            "you said sessions\n"
        );
        drop(server);
        assert!(!path.exists());
        assert!(query(&path, "monitor").await.is_err());
    }
}
