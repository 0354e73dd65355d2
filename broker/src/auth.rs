//! Bearer-token authentication of the `baton.v1` services.
//!
//! The broker accepts any token of its token file, so a token can be
//! rotated without downtime: add the new one, roll the workers, remove the
//! old one. Health and reflection are not wrapped, because Kubernetes
//! probes and `grpcurl` discovery cannot send a token.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::config::ConfigError;

/// The tokens of a token file: one a line, blank lines and `#` comments
/// skipped, surrounding whitespace trimmed.
pub fn parse_tokens(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Reads a token file; one without any token is refused, since it would
/// lock every client out.
pub fn read_tokens(path: &Path) -> Result<Vec<String>, ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable {
        what: "auth token file",
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| unreadable(err.to_string()))?;
    let tokens = parse_tokens(&text);
    if tokens.is_empty() {
        return Err(unreadable("it holds no token".to_owned()));
    }
    Ok(tokens)
}

/// Checks the `authorization` header of every call it wraps; `None`
/// tokens let every call through.
#[derive(Clone, Default)]
pub(crate) struct Authenticator {
    tokens: Option<Arc<[Vec<u8>]>>,
}

impl Authenticator {
    /// Requires one of `tokens` on every call.
    pub(crate) fn new(tokens: Vec<String>) -> Self {
        let tokens = tokens.into_iter().map(String::into_bytes).collect();
        Authenticator {
            tokens: Some(tokens),
        }
    }

    /// Whether `presented` is one of the tokens. Every token is compared,
    /// each in constant time, so the timing tells nothing about which
    /// bytes matched (only, at most, a token's length).
    fn accepts(tokens: &[Vec<u8>], presented: &[u8]) -> bool {
        tokens.iter().fold(0u8, |found, token| {
            found | token.ct_eq(presented).unwrap_u8()
        }) == 1
    }
}

impl fmt::Debug for Authenticator {
    /// Never prints the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.tokens.as_ref().map(|t| t.len());
        f.debug_struct("Authenticator")
            .field("tokens", &count)
            .finish()
    }
}

impl Interceptor for Authenticator {
    /// Returns `UNAUTHENTICATED` when the header is missing, is not a
    /// bearer token, or carries a token not in the file. The message never
    /// repeats what was sent.
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(request);
        };
        let Some(header) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated("missing bearer token"));
        };
        let presented = header
            .as_bytes()
            .strip_prefix(b"Bearer ")
            .ok_or_else(|| Status::unauthenticated("authorization is not a bearer token"))?;
        if Authenticator::accepts(tokens, presented) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(auth: &mut Authenticator, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(value) = header {
            let value = value.parse().expect("ascii header");
            request.metadata_mut().insert("authorization", value);
        }
        auth.call(request).map(drop).map_err(|status| status.code())
    }

    #[test]
    fn comments_and_blank_lines_are_not_tokens() {
        let text = "# rotated 2026-01\n\n  old-token  \nnew-token\n   # note\n";
        assert_eq!(parse_tokens(text), ["old-token", "new-token"]);
    }

    #[test]
    fn a_missing_or_empty_token_file_is_refused_by_name() {
        let missing = read_tokens(Path::new("/nonexistent/tokens")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/tokens"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("tokens");
        std::fs::write(&empty, "# nothing yet\n\n").unwrap();
        let err = read_tokens(&empty).unwrap_err().to_string();
        assert!(err.contains("holds no token"), "{err}");
    }

    #[test]
    fn either_listed_token_is_accepted() {
        let mut auth = Authenticator::new(vec!["one".to_owned(), "two".to_owned()]);
        assert_eq!(call(&mut auth, Some("Bearer one")), Ok(()));
        assert_eq!(call(&mut auth, Some("Bearer two")), Ok(()));
    }

    #[test]
    fn missing_wrong_and_non_bearer_tokens_are_unauthenticated() {
        let mut auth = Authenticator::new(vec!["secret".to_owned()]);
        let refused = Err(tonic::Code::Unauthenticated);
        assert_eq!(call(&mut auth, None), refused);
        assert_eq!(call(&mut auth, Some("Bearer secreT")), refused);
        assert_eq!(call(&mut auth, Some("Bearer secret2")), refused);
        assert_eq!(call(&mut auth, Some("Basic secret")), refused);
        assert_eq!(call(&mut auth, Some("Bearer ")), refused);
    }

    #[test]
    fn without_tokens_every_call_passes() {
        assert_eq!(call(&mut Authenticator::default(), None), Ok(()));
    }

    #[test]
    fn a_wrong_token_is_not_echoed() {
        let mut auth = Authenticator::new(vec!["secret".to_owned()]);
        let mut request = Request::new(());
        let value = "Bearer guessed-token".parse().expect("ascii header");
        request.metadata_mut().insert("authorization", value);
        let status = auth.call(request).expect_err("refused");
        assert!(!status.message().contains("guessed"));
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
