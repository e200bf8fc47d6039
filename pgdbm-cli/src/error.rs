//! The command's error: one message, its causes, and an exit code.

use std::error::Error as StdError;
use std::fmt;

/// A failure of a command.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
    /// Lines printed after the message (e.g. every changed migration).
    pub(crate) details: Vec<String>,
    /// The process exit code.
    pub(crate) code: u8,
}

/// The result of a command.
pub(crate) type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A failure with exit code 1.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            source: None,
            details: Vec::new(),
            code: 1,
        }
    }

    /// A failure caused by `source`.
    pub(crate) fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        CliError {
            source: Some(source.into()),
            ..CliError::new(message)
        }
    }

    /// A usage error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            ..CliError::new(message)
        }
    }

    /// Prints `error: …`, the details and `  caused by: …` for every cause not already said.
    pub(crate) fn report(&self) {
        eprintln!("error: {}", self.message);
        for d in &self.details {
            eprintln!("  {d}");
        }
        let mut said = self.message.clone();
        let mut cause: Option<&(dyn StdError + 'static)> = match &self.source {
            Some(s) => Some(s.as_ref()),
            None => None,
        };
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !said.contains(&text) {
                eprintln!("  caused by: {text}");
                said.push('\n');
                said.push_str(&text);
            }
            cause = c.source();
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<pgdbm::Error> for CliError {
    fn from(e: pgdbm::Error) -> Self {
        let message = e.to_string();
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        let mut err = CliError::new(message);
        // Keep the chain as text: pgdbm's errors are not `Sync`-bounded in every variant.
        if let Some(s) = source {
            err.source = Some(Chain::collect(&e, s).into());
        }
        err
    }
}

/// The causes of an error, as text.
#[derive(Debug)]
struct Chain {
    text: String,
    next: Option<Box<Chain>>,
}

impl Chain {
    fn collect(e: &dyn StdError, _first: String) -> Chain {
        let mut texts = Vec::new();
        let mut cause = e.source();
        while let Some(c) = cause {
            texts.push(c.to_string());
            cause = c.source();
        }
        let mut chain: Option<Box<Chain>> = None;
        for text in texts.into_iter().rev() {
            chain = Some(Box::new(Chain { text, next: chain }));
        }
        *chain.expect("at least one cause")
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Chain {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.next.as_deref().map(|c| c as &(dyn StdError + 'static))
    }
}
