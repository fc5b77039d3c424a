//! ECS `nextToken`/`maxResults` pagination over a sorted list of keys. Tokens are opaque to
//! clients: the hex encoding of the last key returned, so a page resumes strictly after it
//! even when items were added or removed in between.

/// What went wrong with a pagination request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `maxResults` outside 1..=100.
    #[error("maxResults must be between 1 and {max}, got {got}.")]
    MaxResults { got: i64, max: usize },
    /// A `nextToken` this server did not issue.
    #[error("The nextToken is invalid: use the nextToken value from a previous response.")]
    Token,
}

/// A page request: the position after which to start and how many items to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
    /// How many items at most.
    pub limit: usize,
}

impl PageRequest {
    /// Validates `nextToken` and `maxResults` as ECS does; `max` is the operation's upper
    /// bound and default (100 for most list operations).
    pub fn parse(
        next_token: Option<&str>,
        max_results: Option<i64>,
        max: usize,
    ) -> Result<PageRequest, PageError> {
        let limit = match max_results {
            None => max,
            Some(n) if n >= 1 && n <= max as i64 => n as usize,
            Some(n) => return Err(PageError::MaxResults { got: n, max }),
        };
        let after = match next_token {
            None | Some("") => None,
            Some(token) => Some(decode_token(token).ok_or(PageError::Token)?),
        };
        Ok(PageRequest { after, limit })
    }

    /// Takes one page from `items`, already sorted by `key`; returns the page and the token
    /// for the next one, if any items remain.
    pub fn page<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        let mut rest: Vec<T> = match &self.after {
            Some(after) => items
                .into_iter()
                .filter(|item| key(item).as_str() > after.as_str())
                .collect(),
            None => items,
        };
        if rest.len() > self.limit {
            rest.truncate(self.limit);
            let token = rest.last().map(|last| encode_token(&key(last)));
            (rest, token)
        } else {
            (rest, None)
        }
    }
}

fn encode_token(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) || token.len() > 4096 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_exactly_once() {
        let items: Vec<String> = (0..120).map(|i| format!("f{i:03}")).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = PageRequest::parse(token.as_deref(), Some(50), 100).expect("valid");
            let (page, next) = req.page(items.clone(), |s| s.clone());
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn max_results_outside_range_is_rejected() {
        assert_eq!(
            PageRequest::parse(None, Some(0), 100),
            Err(PageError::MaxResults { got: 0, max: 100 })
        );
        assert!(PageRequest::parse(None, Some(101), 100).is_err());
        assert_eq!(
            PageRequest::parse(None, None, 100).expect("default").limit,
            100
        );
    }

    #[test]
    fn foreign_tokens_are_rejected() {
        assert_eq!(
            PageRequest::parse(Some("zz"), None, 100),
            Err(PageError::Token)
        );
        assert_eq!(
            PageRequest::parse(Some("abc"), None, 100),
            Err(PageError::Token)
        );
    }
}
