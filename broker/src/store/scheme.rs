//! Which backend a database URL names, from its scheme alone.

use crate::error::Error;

/// The store backends, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:` (`sqlite://PATH?mode=rwc`, `sqlite::memory:`).
    Sqlite,
}

impl Scheme {
    /// The backend `url` names; INVALID_ARGUMENT for any other scheme. The
    /// message shows the scheme only: the rest may hold a password.
    pub(crate) fn of(url: &str) -> Result<Scheme, Error> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Scheme::Postgres),
            "sqlite" => Ok(Scheme::Sqlite),
            _ => Err(Error::InvalidArgument(format!(
                "database url scheme `{scheme}` is not one of postgres://, postgresql:// \
                 or sqlite:"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Scheme::of("postgres://u@h/db").ok(), Some(Scheme::Postgres));
        assert_eq!(Scheme::of("postgresql://h/db").ok(), Some(Scheme::Postgres));
        assert_eq!(
            Scheme::of("sqlite://data/baton.db?mode=rwc").ok(),
            Some(Scheme::Sqlite)
        );
        assert_eq!(Scheme::of("sqlite::memory:").ok(), Some(Scheme::Sqlite));
    }

    #[test]
    fn another_scheme_is_refused_without_echoing_the_url() {
        let err = Scheme::of("mysql://user:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`mysql`"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
