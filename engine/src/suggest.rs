//! "Did you mean …?": the closest known name to a misspelt one, for messages about unknown
//! task names, parameters, policies' members and the like.

/// The candidate closest to `name` by edit distance, when it is close enough to be a likely
/// typo (a third of the name's length, at least one edit), or equal but for case.
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean 'x'?` for [`closest`], or `None`.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(name, candidates).map(|c| format!("did you mean '{c}'?"))
}

/// Levenshtein distance over characters (with transpositions counted as one edit).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name() {
        let names = ["fetch", "transform", "load", "limit"];
        assert_eq!(closest("transfrom", names), Some("transform"));
        assert_eq!(closest("limt", names), Some("limit"));
        assert_eq!(closest("Load", names), Some("load"));
        assert_eq!(closest("lod", names), Some("load"));
        assert_eq!(closest("zebra", names), None);
        assert_eq!(closest("x", ["y"]), Some("y"));
        assert_eq!(closest("", names), None);
        assert_eq!(
            did_you_mean("fecth", names).as_deref(),
            Some("did you mean 'fetch'?")
        );
    }
}
