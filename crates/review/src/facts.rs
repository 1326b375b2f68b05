//! The facts an analyst records about media: estimated age band (the bands of IWF's
//! IntelliGrade), severity (the UK sentencing categories A-C that IntelliGrade also uses),
//! whether the context makes it harmful-abusive, or that it is not relevant at all.
//! Facts are stored once; what they mean in a scheme or jurisdiction is for the verdict
//! tables ([`crate::verdicts`]) to say.

use aranea_store::Facts;

use crate::error::ReviewError;

/// Estimated age of the youngest person shown.
pub const AGE_BANDS: &[(&str, &str)] = &[
    ("0-2", "0-2 years"),
    ("3-6", "3-6 years"),
    ("7-10", "7-10 years"),
    ("11-13", "11-13 years"),
    ("14-15", "14-15 years"),
    ("16-17", "16-17 years"),
    ("adult", "18 or older"),
    ("unknown", "cannot tell"),
];

/// Severity of what is shown.
pub const SEVERITIES: &[(&str, &str)] = &[
    ("A", "A: penetrative activity, bestiality or sadism"),
    ("B", "B: non-penetrative sexual activity"),
    ("C", "C: other indecent images"),
    ("none", "no sexual activity or indecency"),
];

/// An analyst's classification, checked against the vocabularies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Classification {
    facts: Facts,
}

impl Classification {
    /// Checks the facts. "Not relevant" stands alone: it carries no age band or severity
    /// (recorded as `unknown`/`none`).
    pub fn new(
        age_band: &str,
        severity: &str,
        harmful_context: bool,
        not_relevant: bool,
    ) -> Result<Classification, ReviewError> {
        if not_relevant {
            return Ok(Classification::not_relevant());
        }
        if !AGE_BANDS.iter().any(|(code, _)| *code == age_band) {
            return Err(ReviewError::invalid(
                "age band",
                format!("{age_band:?} is not a band"),
            ));
        }
        if !SEVERITIES.iter().any(|(code, _)| *code == severity) {
            return Err(ReviewError::invalid(
                "severity",
                format!("{severity:?} is not a category"),
            ));
        }
        Ok(Classification {
            facts: Facts {
                age_band: age_band.to_string(),
                severity: severity.to_string(),
                harmful_context,
                not_relevant: false,
            },
        })
    }

    /// Media with nothing to report.
    pub fn not_relevant() -> Classification {
        Classification {
            facts: Facts {
                age_band: "unknown".to_string(),
                severity: "none".to_string(),
                harmful_context: false,
                not_relevant: true,
            },
        }
    }

    /// Wraps stored facts (already checked when recorded).
    pub fn from_facts(facts: Facts) -> Classification {
        Classification { facts }
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    pub fn into_facts(self) -> Facts {
        self.facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_vocabulary_is_refused() {
        assert!(Classification::new("5-9", "A", false, false).is_err());
        assert!(Classification::new("3-6", "Z", false, false).is_err());
        assert!(Classification::new("3-6", "", false, false).is_err());
        assert!(Classification::new("3-6", "A", false, false).is_ok());
    }

    #[test]
    fn not_relevant_drops_other_facts() {
        let c = Classification::new("3-6", "A", true, true).unwrap();
        assert_eq!(c, Classification::not_relevant());
        assert_eq!(c.facts().severity, "none");
    }
}
