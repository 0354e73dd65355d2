//! "Did you mean" suggestions for unknown keys and names.

/// The candidate closest to `word` by edit distance, when close enough to be
/// a plausible typo (at most a third of the word's length, at least 2).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let budget = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The message for a key that is not one of `known`.
pub(crate) fn unknown_key(key: &str, known: &[&str]) -> String {
    let hint = closest(key, known)
        .map(|close| format!("; did you mean `{close}`?"))
        .unwrap_or_default();
    format!("unknown key `{key}`{hint} known keys: {}", known.join(", "))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            let best = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            current.push(best);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_letter_suggests_the_key() {
        let known = ["max_attempts", "max_delay", "jitter"];
        assert_eq!(closest("max_attempt", &known), Some("max_attempts"));
    }

    #[test]
    fn an_unrelated_word_suggests_nothing() {
        assert_eq!(closest("colour", &["max_attempts", "jitter"]), None);
    }

    #[test]
    fn the_message_lists_every_known_key() {
        let message = unknown_key("jiter", &["jitter", "max_delay"]);
        assert!(message.contains("did you mean `jitter`?"), "{message}");
        assert!(
            message.contains("known keys: jitter, max_delay"),
            "{message}"
        );
    }
}
