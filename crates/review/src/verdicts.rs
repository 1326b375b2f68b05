//! Verdicts derived from facts by mapping tables that are data (TOML), never code: the
//! Arachnid Shield categories, INTERPOL's baseline, and one national scheme per
//! jurisdiction. The built-in tables are `schemes.toml` in this crate.
//!
//! This module must not store verdicts: facts are stored, verdicts are derived when needed,
//! so a corrected table re-derives every past decision consistently.

use serde::Deserialize;

use aranea_store::Facts;

use crate::error::ReviewError;
use crate::facts::{AGE_BANDS, SEVERITIES};

const BUILTIN: &str = include_str!("../schemes.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemesFile {
    platform: String,
    scheme: Vec<Scheme>,
}

/// One scheme: rules in order, a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    pub name: String,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    #[serde(default)]
    pub description: String,
    pub default: String,
    #[serde(default)]
    rule: Vec<Rule>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    verdict: String,
    #[serde(default)]
    age_bands: Option<Vec<String>>,
    #[serde(default)]
    severity: Option<Vec<String>>,
    #[serde(default)]
    harmful_context: Option<bool>,
    #[serde(default)]
    not_relevant: Option<bool>,
}

impl Rule {
    fn holds(&self, facts: &Facts) -> bool {
        self.age_bands
            .as_ref()
            .is_none_or(|bands| bands.contains(&facts.age_band))
            && self
                .severity
                .as_ref()
                .is_none_or(|s| s.contains(&facts.severity))
            && self
                .harmful_context
                .is_none_or(|h| h == facts.harmful_context)
            && self.not_relevant.is_none_or(|n| n == facts.not_relevant)
    }
}

impl Scheme {
    /// The verdict this scheme gives.
    pub fn verdict(&self, facts: &Facts) -> &str {
        self.rule
            .iter()
            .find(|r| r.holds(facts))
            .map_or(self.default.as_str(), |r| r.verdict.as_str())
    }
}

/// A scheme's verdict, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub scheme: String,
    pub jurisdiction: Option<String>,
    pub verdict: String,
}

/// The loaded mapping tables.
#[derive(Clone, Debug)]
pub struct Schemes {
    platform: usize,
    schemes: Vec<Scheme>,
}

impl Schemes {
    /// The tables shipped with Aranea.
    pub fn builtin() -> Schemes {
        // The built-in file is checked by a unit test, so this cannot fail in a release.
        Schemes::from_toml(BUILTIN).unwrap_or_else(|_| Schemes {
            platform: 0,
            schemes: Vec::new(),
        })
    }

    /// Parses and checks tables: known codes only, unique (name, jurisdiction), and a
    /// platform scheme that applies everywhere.
    pub fn from_toml(text: &str) -> Result<Schemes, ReviewError> {
        let file: SchemesFile =
            toml::from_str(text).map_err(|e| ReviewError::Schemes(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for scheme in &file.scheme {
            if !seen.insert((scheme.name.clone(), scheme.jurisdiction.clone())) {
                return Err(ReviewError::Schemes(format!(
                    "scheme {:?} ({:?}) defined twice",
                    scheme.name, scheme.jurisdiction
                )));
            }
            check_verdict(&scheme.name, &scheme.default)?;
            for rule in &scheme.rule {
                check_verdict(&scheme.name, &rule.verdict)?;
                check_codes(&scheme.name, rule.age_bands.as_deref(), AGE_BANDS)?;
                check_codes(&scheme.name, rule.severity.as_deref(), SEVERITIES)?;
                if rule.verdict == scheme.default && scheme.name == file.platform {
                    return Err(ReviewError::Schemes(format!(
                        "platform scheme rule gives the default verdict {:?}",
                        rule.verdict
                    )));
                }
            }
        }
        let platform = file
            .scheme
            .iter()
            .position(|s| s.name == file.platform && s.jurisdiction.is_none())
            .ok_or_else(|| {
                ReviewError::Schemes(format!(
                    "platform scheme {:?} (without jurisdiction) is not defined",
                    file.platform
                ))
            })?;
        Ok(Schemes {
            platform,
            schemes: file.scheme,
        })
    }

    /// Reads tables from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Schemes, ReviewError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReviewError::Schemes(format!("{}: {e}", path.display())))?;
        Schemes::from_toml(&text)
    }

    /// The platform verdict (e.g. `csam`), or `None` when the facts do not put the media
    /// in the bank.
    pub fn platform_verdict(&self, facts: &Facts) -> Option<&str> {
        let scheme = self.schemes.get(self.platform)?;
        let verdict = scheme.verdict(facts);
        (verdict != scheme.default).then_some(verdict)
    }

    /// The platform scheme's name for "nothing to bank".
    pub fn platform_default(&self) -> &str {
        self.schemes
            .get(self.platform)
            .map_or("none", |s| s.default.as_str())
    }

    /// Every verdict that applies to a hotline of `jurisdiction`: the schemes without a
    /// jurisdiction, and that jurisdiction's own.
    pub fn verdicts(&self, jurisdiction: &str, facts: &Facts) -> Vec<Verdict> {
        self.schemes
            .iter()
            .filter(|s| s.jurisdiction.as_deref().is_none_or(|j| j == jurisdiction))
            .map(|s| Verdict {
                scheme: s.name.clone(),
                jurisdiction: s.jurisdiction.clone(),
                verdict: s.verdict(facts).to_string(),
            })
            .collect()
    }
}

/// A platform verdict becomes the classification of the bank entries a positive decision
/// adds, and every verdict is shown to analysts, so each is held to a classification's rule
/// here, when the tables load, not when a decision is banked (and could not be).
fn check_verdict(scheme: &str, verdict: &str) -> Result<(), ReviewError> {
    aranea_index::bank::check_entry_classification(verdict)
        .map_err(|e| ReviewError::Schemes(format!("scheme {scheme:?}: verdict {verdict:?}: {e}")))
}

fn check_codes(
    scheme: &str,
    codes: Option<&[String]>,
    known: &[(&str, &str)],
) -> Result<(), ReviewError> {
    for code in codes.unwrap_or_default() {
        if !known.iter().any(|(k, _)| k == code) {
            return Err(ReviewError::Schemes(format!(
                "scheme {scheme:?}: unknown code {code:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Classification;

    fn facts(age: &str, severity: &str, harmful: bool) -> Facts {
        Classification::new(age, severity, harmful, false)
            .unwrap()
            .into_facts()
    }

    #[test]
    fn builtin_tables_load() {
        Schemes::from_toml(BUILTIN).unwrap();
    }

    #[test]
    fn builtin_platform_verdicts() {
        let s = Schemes::builtin();
        assert_eq!(s.platform_verdict(&facts("3-6", "A", false)), Some("csam"));
        assert_eq!(
            s.platform_verdict(&facts("16-17", "C", false)),
            Some("csam")
        );
        assert_eq!(
            s.platform_verdict(&facts("7-10", "none", true)),
            Some("harmful-abusive-material")
        );
        assert_eq!(s.platform_verdict(&facts("adult", "A", false)), None);
        assert_eq!(s.platform_verdict(&facts("7-10", "none", false)), None);
        assert_eq!(
            s.platform_verdict(Classification::not_relevant().facts()),
            None
        );
    }

    #[test]
    fn national_schemes_follow_jurisdiction() {
        let s = Schemes::builtin();
        let f = facts("14-15", "B", false);
        let gb = s.verdicts("GB", &f);
        assert!(
            gb.iter()
                .any(|v| v.scheme == "national" && v.verdict == "category-b")
        );
        assert!(
            gb.iter()
                .any(|v| v.scheme == "interpol-baseline" && v.verdict == "not-baseline")
        );
        let de = s.verdicts("DE", &f);
        assert!(
            de.iter()
                .any(|v| v.scheme == "national" && v.verdict == "184c")
        );
        assert!(!de.iter().any(|v| v.verdict.starts_with("category")));
        let none = s.verdicts("FR", &f);
        assert_eq!(none.iter().filter(|v| v.scheme == "national").count(), 0);
    }

    #[test]
    fn hostile_tables_are_refused() {
        assert!(Schemes::from_toml("").is_err());
        assert!(
            Schemes::from_toml("platform = \"x\"\n[[scheme]]\nname = \"y\"\ndefault = \"n\"")
                .is_err()
        );
        let bad_code = "platform = \"p\"\n[[scheme]]\nname = \"p\"\ndefault = \"n\"\n\
            [[scheme.rule]]\nage_bands = [\"5-9\"]\nverdict = \"v\"";
        assert!(Schemes::from_toml(bad_code).is_err());
        let unknown_key = "platform = \"p\"\n[[scheme]]\nname = \"p\"\ndefault = \"n\"\nextra = 1";
        assert!(Schemes::from_toml(unknown_key).is_err());
        let twice = "platform = \"p\"\n[[scheme]]\nname = \"p\"\ndefault = \"n\"\n\
            [[scheme]]\nname = \"p\"\ndefault = \"n\"";
        assert!(Schemes::from_toml(twice).is_err());
        assert!(Schemes::from_toml(&"[".repeat(100_000)).is_err());
    }

    /// A verdict that a bank could not take as a classification is refused with the tables.
    #[test]
    fn verdicts_follow_the_classification_rule() {
        // A TOML basic string: control characters reach the tables only as `\uXXXX` escapes.
        let quoted = |text: &str| {
            let mut out = String::from("\"");
            for c in text.chars() {
                if c.is_control() {
                    out.push_str(&format!("\\u{:04X}", u32::from(c)));
                } else {
                    out.push(c);
                }
            }
            out + "\""
        };
        let tables = |default: &str, verdict: &str| {
            format!(
                "platform = \"p\"\n[[scheme]]\nname = \"p\"\ndefault = {}\n\
                 [[scheme.rule]]\nseverity = [\"A\"]\nverdict = {}",
                quoted(default),
                quoted(verdict)
            )
        };
        let fine = tables("none", &"é".repeat(50));
        Schemes::from_toml(&fine).expect("100 bytes of printable text is a classification");
        for (default, verdict, what) in [
            ("none", "csam\nstatus: removed", "a line feed"),
            ("none", "csam\r", "a carriage return"),
            ("none", "\u{1b}[2Jcsam", "an escape"),
            ("none", &"x".repeat(101), "101 bytes"),
            ("none\u{85}", "csam", "a C1 control in the default"),
        ] {
            let error = Schemes::from_toml(&tables(default, verdict))
                .err()
                .unwrap_or_else(|| panic!("a verdict with {what} was accepted"));
            let message = error.to_string();
            assert!(message.contains("scheme \"p\""), "{what}: {message}");
            assert!(message.contains("classification"), "{what}: {message}");
        }
    }
}
