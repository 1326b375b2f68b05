//! When votes decide an item. Analysts agree when their facts give the same platform
//! verdict (e.g. all `csam`, or all "nothing to bank"): that is what the decision acts on.
//! Any disagreement sends the item to a senior analyst rather than letting a majority win,
//! because a wrong positive sends notices and a wrong negative buries abuse.

use aranea_store::Facts;

use crate::verdicts::Schemes;

/// Where the votes on an item stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tally {
    /// Fewer than the required votes, all agreeing so far.
    Collecting { votes: usize },
    /// Enough votes, all agreeing. `facts` are the most common facts among them (the
    /// earliest on a tie); `verdict` is the platform verdict, `None` for negative.
    Agreed {
        facts: Facts,
        verdict: Option<String>,
    },
    /// Votes gave different platform verdicts.
    Disputed,
}

/// Tallies votes (oldest first) against the number of agreeing votes required.
pub fn tally(votes: &[Facts], required: usize, schemes: &Schemes) -> Tally {
    let Some(first) = votes.first() else {
        return Tally::Collecting { votes: 0 };
    };
    let verdict = schemes.platform_verdict(first);
    if votes.iter().any(|v| schemes.platform_verdict(v) != verdict) {
        return Tally::Disputed;
    }
    if votes.len() < required.max(1) {
        return Tally::Collecting { votes: votes.len() };
    }
    let mut best = first;
    let mut best_count = 0;
    for candidate in votes {
        let count = votes.iter().filter(|v| *v == candidate).count();
        if count > best_count {
            best = candidate;
            best_count = count;
        }
    }
    Tally::Agreed {
        facts: best.clone(),
        verdict: verdict.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Classification;

    fn f(age: &str, severity: &str) -> Facts {
        Classification::new(age, severity, false, false)
            .unwrap()
            .into_facts()
    }

    #[test]
    fn three_agreeing_votes_decide() {
        let s = Schemes::builtin();
        let votes = [f("3-6", "A"), f("7-10", "B"), f("7-10", "B")];
        assert_eq!(tally(&votes[..2], 3, &s), Tally::Collecting { votes: 2 });
        assert_eq!(
            tally(&votes, 3, &s),
            Tally::Agreed {
                facts: f("7-10", "B"),
                verdict: Some("csam".into())
            }
        );
    }

    #[test]
    fn negative_agreement_decides_negative() {
        let s = Schemes::builtin();
        let nr = Classification::not_relevant().into_facts();
        let votes = [nr.clone(), f("adult", "A"), nr.clone()];
        assert_eq!(
            tally(&votes, 3, &s),
            Tally::Agreed {
                facts: nr,
                verdict: None
            }
        );
    }

    #[test]
    fn any_disagreement_disputes() {
        let s = Schemes::builtin();
        let votes = [f("3-6", "A"), Classification::not_relevant().into_facts()];
        assert_eq!(tally(&votes, 3, &s), Tally::Disputed);
    }

    #[test]
    fn configurable_threshold() {
        let s = Schemes::builtin();
        assert!(matches!(
            tally(&[f("3-6", "A")], 1, &s),
            Tally::Agreed { .. }
        ));
        assert!(matches!(
            tally(&[f("3-6", "A")], 0, &s),
            Tally::Agreed { .. }
        ));
        assert_eq!(tally(&[], 3, &s), Tally::Collecting { votes: 0 });
    }
}
