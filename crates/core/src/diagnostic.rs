//! Problems found in a blueprint, each pinned to a file position with a fix.

use std::fmt;

use serde::Serialize;

/// How bad a problem is: errors stop a blueprint from running, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `unknown-node`; documented in `docs/blueprint-errors.md`.
    pub code: &'static str,
    /// JSON pointer of the offending value, e.g. `/nodes/2/agent`.
    pub pointer: String,
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            pointer: pointer.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, pointer, message)
        }
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column: error[code]: message` plus an indented help line.
    pub fn display_in<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        DisplayIn {
            diagnostic: self,
            file,
        }
    }
}

struct DisplayIn<'a> {
    diagnostic: &'a Diagnostic,
    file: &'a str,
}

impl fmt::Display for DisplayIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {severity}[{}]: {}",
            self.file, d.line, d.column, d.code, d.message
        )?;
        if let Some(help) = &d.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// "did you mean `x`?" for a misspelt name, when a close candidate exists.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
