//! One content-addressed object store for every file the platform keeps:
//! samples, the outputs runners produced and the build artifacts fetched for
//! runs, each once under its SHA-256, and the logs runners upload, by run,
//! attempt and name. A local directory by default; Google Cloud Storage with
//! `gs://bucket/prefix`, so every replica serves the same files.
//!
//! Every upload takes one path: streamed into a temporary object, capped in
//! size and hashed on the way, and moved under its hash only when complete
//! (and, when the caller names the hash it expects, only when they agree).
//!
//! Public names: [`Files`] (with [`Kind`], [`Stored`] and [`Content`]),
//! [`LogName`] and [`FileError`].

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

/// What a file is: it decides the folder it is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sample,
    Output,
    /// A build's program under test, fetched for a run.
    Artifact,
}

impl Kind {
    fn folder(self) -> &'static str {
        match self {
            Kind::Sample => "samples",
            Kind::Output => "outputs",
            Kind::Artifact => "artifacts",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("the upload was cut short: {0}")]
    Body(String),
    #[error("larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("the content's SHA-256 is {actual}, not {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("{0:?} is not a SHA-256")]
    NotAHash(String),
    #[error("invalid object store {0:?}: {1}")]
    Config(String, String),
    #[error("{path}: {error}")]
    Local {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl FileError {
    /// Whether the same request may succeed later: the store's trouble or a
    /// cut connection, not the content.
    pub fn is_transient(&self) -> bool {
        match self {
            FileError::Store(_) | FileError::Body(_) | FileError::Config(..) => true,
            FileError::Local { error, .. } => error.kind() != std::io::ErrorKind::NotFound,
            FileError::TooLarge { .. }
            | FileError::HashMismatch { .. }
            | FileError::NotAHash(_) => false,
        }
    }
}

/// A stored file's content as it streams out of the store, and its size.
pub struct Content {
    pub size_bytes: u64,
    pub stream: BoxStream<'static, Result<Bytes, object_store::Error>>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}

/// One log of one attempt of a run, as its runner named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName {
    pub run: uuid::Uuid,
    pub attempt: u32,
    pub name: String,
}

impl LogName {
    /// Whether a runner's name for a log can be one: log names become object
    /// names, so no path separators, no leading dot, a bounded length.
    pub fn valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }
}

/// An upload received into a temporary object.
struct Received {
    incoming: Path,
    sha256: String,
    size_bytes: u64,
}

/// A file stored: its hash and size, and whether it was there already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size_bytes: u64,
    pub existed: bool,
}

#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Upload parts of this size; object stores take multipart uploads in parts.
const PART_BYTES: usize = 8 * 1024 * 1024;

impl Files {
    /// `gs://bucket/prefix` (credentials from the environment, as
    /// `object_store` reads them), or a local directory, created if missing.
    pub fn open(location: &str) -> Result<Files, FileError> {
        let config = |e: &dyn std::fmt::Display| FileError::Config(location.into(), e.to_string());
        if location.contains("://") {
            let url = url::Url::parse(location).map_err(|e| config(&e))?;
            let (store, prefix) =
                object_store::parse_url_opts(&url, std::env::vars()).map_err(|e| config(&e))?;
            return Ok(Files {
                store: Arc::from(store),
                prefix,
            });
        }
        std::fs::create_dir_all(location).map_err(|e| config(&e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(location)
            .map_err(|e| config(&e))?
            .with_automatic_cleanup(true);
        Ok(Files {
            store: Arc::new(store),
            prefix: Path::default(),
        })
    }

    fn path(&self, kind: Kind, sha256: &str) -> Path {
        self.prefix.clone().join(kind.folder()).join(sha256)
    }

    pub async fn exists(&self, kind: Kind, sha256: &str) -> Result<Option<u64>, FileError> {
        match self.store.head(&self.path(kind, sha256)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Store a stream, hashing it as it arrives, refused beyond `limit`
    /// bytes or, with `expected`, when its hash differs. Written under a
    /// temporary name first, so no reader ever sees a file under a hash its
    /// content does not have.
    pub async fn put<S, E>(
        &self,
        kind: Kind,
        expected: Option<&str>,
        limit: u64,
        body: S,
    ) -> Result<Stored, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(sha) = expected
            && !sp_domain::catalogue::is_sha256(sha)
        {
            return Err(FileError::NotAHash(sha.to_string()));
        }
        let received = self.receive(limit, body).await?;
        if let Some(expected) = expected
            && !expected.eq_ignore_ascii_case(&received.sha256)
        {
            let _ = self.store.delete(&received.incoming).await;
            return Err(FileError::HashMismatch {
                expected: expected.to_string(),
                actual: received.sha256,
            });
        }
        let existed = self.exists(kind, &received.sha256).await?.is_some();
        if existed {
            self.store.delete(&received.incoming).await?;
        } else {
            self.store
                .rename(&received.incoming, &self.path(kind, &received.sha256))
                .await?;
        }
        Ok(Stored {
            sha256: received.sha256,
            size_bytes: received.size_bytes,
            existed,
        })
    }

    /// [`Files::put`] of a local file, streamed from disk.
    pub async fn put_path(
        &self,
        kind: Kind,
        expected: Option<&str>,
        limit: u64,
        path: &std::path::Path,
    ) -> Result<Stored, FileError> {
        let local = |error| FileError::Local {
            path: path.to_path_buf(),
            error,
        };
        let file = tokio::fs::File::open(path).await.map_err(local)?;
        self.put(
            kind,
            expected,
            limit,
            tokio_util::io::ReaderStream::new(file),
        )
        .await
    }

    /// Keep a runner's log (or a test's stderr) of one attempt under its
    /// name, replacing an earlier upload of the same name. Refused beyond
    /// `limit` bytes; a reader sees the old file or the whole new one.
    pub async fn put_log<S, E>(&self, log: &LogName, limit: u64, body: S) -> Result<u64, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let received = self.receive(limit, body).await?;
        self.store
            .rename(&received.incoming, &self.log_path(log))
            .await?;
        Ok(received.size_bytes)
    }

    /// A log's content; `None` when it is not stored.
    pub async fn log_content(&self, log: &LogName) -> Result<Option<Content>, FileError> {
        self.get(&self.log_path(log)).await
    }

    /// Every log the runners of `run` uploaded, all attempts, with sizes,
    /// by attempt then name.
    pub async fn logs(&self, run: uuid::Uuid) -> Result<Vec<(LogName, u64)>, FileError> {
        let prefix = self.prefix.clone().join("logs").join(run.to_string());
        let mut listed = self.store.list(Some(&prefix));
        let mut logs = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            let parts: Vec<_> = meta
                .location
                .prefix_match(&prefix)
                .into_iter()
                .flatten()
                .collect();
            if let [attempt, name] = parts.as_slice()
                && let Ok(attempt) = attempt.as_ref().parse::<u32>()
            {
                logs.push((
                    LogName {
                        run,
                        attempt,
                        name: name.as_ref().to_string(),
                    },
                    meta.size,
                ));
            }
        }
        logs.sort_by(|(a, _), (b, _)| (a.attempt, &a.name).cmp(&(b.attempt, &b.name)));
        Ok(logs)
    }

    fn log_path(&self, log: &LogName) -> Path {
        self.prefix
            .clone()
            .join("logs")
            .join(log.run.to_string())
            .join(log.attempt.to_string())
            .join(log.name.as_str())
    }

    /// Stream `body` into a fresh temporary object, hashing it, at most
    /// `limit` bytes; the caller moves it where it belongs.
    async fn receive<S, E>(&self, limit: u64, mut body: S) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let incoming = self
            .prefix
            .clone()
            .join("incoming")
            .join(uuid::Uuid::new_v4().to_string());
        let mut upload = WriteMultipart::new_with_chunk_size(
            self.store.put_multipart(&incoming).await?,
            PART_BYTES,
        );
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let outcome: Result<(), FileError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| FileError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(FileError::TooLarge { limit });
                }
                hasher.update(&chunk);
                upload.wait_for_capacity(4).await?;
                upload.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            let _ = upload.abort().await;
            return Err(e);
        }
        upload.finish().await?;
        Ok(Received {
            incoming,
            sha256: hex::encode(hasher.finalize()),
            size_bytes: size,
        })
    }

    /// At most `limit` bytes of a file, and whether it is longer; `None` when
    /// the store does not have it.
    pub async fn head_bytes(
        &self,
        kind: Kind,
        sha256: &str,
        limit: u64,
    ) -> Result<Option<(Bytes, bool)>, FileError> {
        let Some(size) = self.exists(kind, sha256).await? else {
            return Ok(None);
        };
        if size == 0 || limit == 0 {
            // An empty range is not a valid request to an object store.
            return Ok(Some((Bytes::new(), size > limit)));
        }
        let bytes = self
            .store
            .get_range(&self.path(kind, sha256), 0..size.min(limit))
            .await?;
        Ok(Some((bytes, size > limit)))
    }

    /// A file's content; `None` when it is not stored.
    pub async fn content(&self, kind: Kind, sha256: &str) -> Result<Option<Content>, FileError> {
        self.get(&self.path(kind, sha256)).await
    }

    /// Delete a file (never a sample: retention keeps every one); `false`
    /// when it was not there.
    pub async fn delete(&self, kind: Kind, sha256: &str) -> Result<bool, FileError> {
        if kind == Kind::Sample {
            return Err(FileError::Config(
                sha256.to_string(),
                "samples are never deleted".into(),
            ));
        }
        self.remove(&self.path(kind, sha256)).await
    }

    /// Delete a runner's log; `false` when it was not there.
    pub async fn delete_log(&self, log: &LogName) -> Result<bool, FileError> {
        self.remove(&self.log_path(log)).await
    }

    async fn remove(&self, path: &Path) -> Result<bool, FileError> {
        // Some stores answer a missing object's delete with success: look first.
        match self.store.head(path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        match self.store.delete(path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, path: &Path) -> Result<Option<Content>, FileError> {
        match self.store.get(path).await {
            Ok(got) => Ok(Some(Content {
                size_bytes: got.meta.size,
                stream: got.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn an_empty_file_reads_as_empty() {
        let dir = tempfile::tempdir().expect("dir");
        let files = Files::open(&dir.path().display().to_string()).expect("open");
        let empty = files
            .put(Kind::Output, None, 10, chunks(&[]))
            .await
            .expect("stored");
        assert_eq!(empty.sha256, sha(b""));
        let (bytes, longer) = files
            .head_bytes(Kind::Output, &empty.sha256, 100)
            .await
            .expect("read")
            .expect("there");
        assert_eq!((bytes.len(), longer), (0, false));
    }

    #[tokio::test]
    async fn logs_are_kept_by_run_attempt_and_name() {
        let dir = tempfile::tempdir().expect("dir");
        let files = Files::open(&dir.path().display().to_string()).expect("open");
        let run = uuid::Uuid::new_v4();
        let log = |attempt: u32, name: &str| LogName {
            run,
            attempt,
            name: name.into(),
        };
        files
            .put_log(&log(2, "runner.log"), 100, chunks(&[b"second\n"]))
            .await
            .expect("stored");
        files
            .put_log(&log(1, "runner.log"), 100, chunks(&[b"old\n"]))
            .await
            .expect("stored");
        // A resent log replaces the earlier one; a too large one is refused
        // and leaves what was there.
        let size = files
            .put_log(&log(1, "runner.log"), 100, chunks(&[b"first ", b"try\n"]))
            .await
            .expect("replaced");
        assert_eq!(size, 10);
        assert!(matches!(
            files
                .put_log(&log(1, "a.stderr"), 4, chunks(&[b"12345"]))
                .await,
            Err(FileError::TooLarge { limit: 4 })
        ));
        files
            .put_log(
                &LogName {
                    run: uuid::Uuid::new_v4(),
                    attempt: 1,
                    name: "other-run.log".into(),
                },
                100,
                chunks(&[b"x"]),
            )
            .await
            .expect("another run's");
        let listed: Vec<(u32, String, u64)> = files
            .logs(run)
            .await
            .expect("list")
            .into_iter()
            .map(|(l, size)| (l.attempt, l.name, size))
            .collect();
        assert_eq!(
            listed,
            vec![(1, "runner.log".into(), 10), (2, "runner.log".into(), 7)]
        );
        let content = files
            .log_content(&log(1, "runner.log"))
            .await
            .expect("read")
            .expect("there");
        let size = content.size_bytes;
        let bytes: Vec<Bytes> = content.stream.map(|c| c.expect("chunk")).collect().await;
        assert_eq!((bytes.concat(), size), (b"first try\n".to_vec(), 10));
        assert!(
            files
                .log_content(&log(3, "runner.log"))
                .await
                .expect("read")
                .is_none()
        );
    }

    #[tokio::test]
    async fn files_are_kept_once_under_their_hash() {
        let dir = tempfile::tempdir().expect("dir");
        let files = Files::open(&dir.path().display().to_string()).expect("open");
        let first = files
            .put(Kind::Sample, None, 100, chunks(&[b"hel", b"lo\n"]))
            .await
            .expect("stored");
        assert_eq!(first.sha256, sha(b"hello\n"));
        assert_eq!((first.size_bytes, first.existed), (6, false));
        let again = files
            .put(Kind::Sample, None, 100, chunks(&[b"hello\n"]))
            .await
            .expect("stored again");
        assert!(again.existed);
        let (bytes, longer) = files
            .head_bytes(Kind::Sample, &first.sha256, 3)
            .await
            .expect("read")
            .expect("there");
        assert_eq!((&bytes[..], longer), (&b"hel"[..], true));
        assert!(
            files
                .exists(Kind::Output, &first.sha256)
                .await
                .expect("head")
                .is_none(),
            "kinds are kept apart"
        );
    }

    #[tokio::test]
    async fn a_wrong_hash_or_a_file_too_large_is_refused_and_not_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let files = Files::open(&dir.path().display().to_string()).expect("open");
        let wrong = sha(b"other");
        let e = files
            .put(Kind::Output, Some(&wrong), 100, chunks(&[b"hello\n"]))
            .await
            .expect_err("mismatch");
        assert!(matches!(e, FileError::HashMismatch { .. }), "{e}");
        let e = files
            .put(Kind::Output, None, 4, chunks(&[b"hel", b"lo\n"]))
            .await
            .expect_err("too large");
        assert!(matches!(e, FileError::TooLarge { limit: 4 }), "{e}");
        assert!(
            files
                .exists(Kind::Output, &sha(b"hello\n"))
                .await
                .expect("head")
                .is_none()
        );
        let leftovers = std::fs::read_dir(dir.path().join("incoming"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0, "no partial upload is left behind");
    }
}
