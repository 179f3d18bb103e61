use std::path::PathBuf;

/// What can go wrong when mounting, cutting power to, or unmounting a lazy filesystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("FUSE is not available: {0}")]
    FuseUnavailable(String),
    #[error("mounting {mountpoint} (backing {backing}): {source}")]
    Mount {
        mountpoint: PathBuf,
        backing: PathBuf,
        source: std::io::Error,
    },
    #[error("unmounting {mountpoint}: {source}")]
    Unmount {
        mountpoint: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
