//! A command string (ExecuteCommand's `command`) as argv: split on blanks outside quotes,
//! with POSIX shell quoting (`'…'` literal, `"…"` with `\"`, `\\`, `\$` and `` \` `` escapes,
//! `\` escaping one character outside quotes). No expansion: a shell is run only when the
//! command names one. [`join`] quotes argv back into such a string.

/// Why a command string cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the command has an unterminated {0} quote")]
    Unterminated(&'static str),
    #[error("the command is empty")]
    Empty,
}

pub fn split(command: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(SplitError::Unterminated("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(SplitError::Unterminated("double")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(SplitError::Unterminated("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(words)
}

/// argv as one command string that [`split`] turns back into `argv`.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|word| {
            let word = word.as_ref();
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                word.to_string()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_as_a_shell_would_without_expanding() {
        assert_eq!(split("/bin/sh").expect("test value"), ["/bin/sh"]);
        assert_eq!(
            split("sh -c 'exit 7'").expect("test value"),
            ["sh", "-c", "exit 7"]
        );
        assert_eq!(
            split(r#"echo "a \"b\" $HOME" c\ d  ''"#).expect("test value"),
            ["echo", r#"a "b" $HOME"#, "c d", ""]
        );
        assert_eq!(split("  "), Err(SplitError::Empty));
        assert_eq!(split("echo 'oops"), Err(SplitError::Unterminated("single")));
        assert_eq!(
            split("echo \"oops"),
            Err(SplitError::Unterminated("double"))
        );
    }

    #[test]
    fn joined_argv_splits_back() {
        for argv in [
            vec!["echo", "hello"],
            vec!["sh", "-c", "echo it's $HOME; exit 7"],
            vec!["printf", "%s\n", "", "a b"],
        ] {
            assert_eq!(split(&join(&argv)).expect("test value"), argv);
        }
        assert_eq!(join(&["sh", "-c", "exit 7"]), "sh -c 'exit 7'");
    }
}
