//! Links and media references from an HTML page, by a streaming parser with a memory cap.
//!
//! Reads `a[href]`, `area[href]`, `iframe[src]`, `frame[src]` as page links and `img[src]`,
//! `img[srcset]`, lazy-loading `img[data-src]`, `source[srcset]` (picture), `video[src]`,
//! `video[poster]`, `source[src]`, `link[rel~=image_src]`, `meta` `og:image` (by `property` or
//! `name`, also `twitter:image` and `og:video`), inline `style` and `<style>` `url(…)` as media
//! links.
//! `<base href>` applies to the whole document wherever it appears, as in browsers. The
//! charset comes from [`charset::detect`]. Output: absolute http(s) URLs without fragments,
//! deduplicated in document order, each list capped.
//!
//! This module must not fetch anything and must not judge what it finds: whether a media URL
//! is worth fetching, or a link in scope, is the frontier's decision.

pub mod charset;
pub mod syntax;

use std::cell::RefCell;
use std::collections::HashSet;

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, MemorySettings, Settings, element, text};
use url::Url;

/// CSS read from one `<style>` element for `url(…)` references.
const MAX_STYLE_BYTES: usize = 256 * 1024;

/// Extraction limits.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// Page links kept; the rest are dropped and [`Extracted::truncated`] set. Default: 5,000.
    pub max_page_links: usize,
    /// Media links kept, likewise. Default: 5,000.
    pub max_media_links: usize,
    /// Memory the HTML parser may use for its buffers. Default: 8 MiB.
    pub max_parser_memory: usize,
    /// Attribute values longer than this are not URLs worth keeping. Default: 4,096 bytes.
    pub max_url_length: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            max_page_links: 5_000,
            max_media_links: 5_000,
            max_parser_memory: 8 * 1024 * 1024,
            max_url_length: 4096,
        }
    }
}

/// Why extraction stopped before the end of the page (what was found until then is kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("HTML parser exceeded its memory limit of {limit} bytes")]
    MemoryLimit { limit: usize },
    #[error("HTML parser stopped: {message}")]
    Parser { message: String },
}

/// What a page links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Pages (anchors, frames), absolute, in document order, without duplicates.
    pub page_links: Vec<Url>,
    /// Images and videos, absolute, in document order, without duplicates.
    pub media_links: Vec<Url>,
    /// The base URL links were resolved against.
    pub base: Url,
    /// The encoding the page was decoded with (WHATWG name).
    pub encoding: &'static str,
    /// A cap dropped links.
    pub truncated: bool,
    /// Parsing stopped early for this reason; the lists hold what came before.
    pub stopped: Option<ExtractError>,
    /// The standards parser found nothing and a forgiving tag-soup scan supplied the links
    /// (see [`syntax::tag_soup_refs`]).
    pub tag_soup: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Page,
    Media,
}

/// Raw attribute values in document order, before resolution.
struct Found {
    base: Option<String>,
    refs: Vec<(Role, String)>,
    /// Raw values already recorded: a page repeating one link a million times stays small.
    seen: HashSet<(Role, String)>,
    /// Bound on raw references so a page of a million anchors cannot grow this without end.
    max_refs: usize,
    max_len: usize,
    overflow: bool,
}

impl Found {
    fn push(&mut self, role: Role, value: &str) {
        let value = syntax::decode_char_refs(value);
        let value = value.trim();
        if value.is_empty() || value.len() > self.max_len {
            return;
        }
        let key = (role, value.to_owned());
        if self.seen.contains(&key) {
            return;
        }
        if self.refs.len() >= self.max_refs {
            self.overflow = true;
            return;
        }
        self.seen.insert(key.clone());
        self.refs.push(key);
    }

    fn attr(&mut self, el: &Element<'_, '_>, name: &str, role: Role) {
        if let Some(value) = el.get_attribute(name) {
            self.push(role, &value);
        }
    }
}

/// Extracts links from `body`, fetched from `url` with the claimed `content_type`.
pub fn extract(
    body: &[u8],
    url: &Url,
    content_type: Option<&str>,
    config: &ExtractConfig,
) -> Extracted {
    let encoding = charset::detect(body, content_type);
    let (text, _, _) = encoding.decode(body);
    let found = RefCell::new(Found {
        base: None,
        refs: Vec::new(),
        seen: HashSet::new(),
        max_refs: config
            .max_page_links
            .saturating_add(config.max_media_links)
            .saturating_mul(4),
        max_len: config.max_url_length,
        overflow: false,
    });
    let stopped = parse(text.as_bytes(), &found, config);
    let mut found = found.into_inner();
    let tag_soup = found.refs.is_empty() && found.base.is_none();
    if tag_soup {
        for (media, value) in syntax::tag_soup_refs(&text) {
            found.push(if media { Role::Media } else { Role::Page }, value);
        }
    }
    let base = found
        .base
        .as_deref()
        .and_then(|b| url.join(b).ok())
        .filter(|b| matches!(b.scheme(), "http" | "https"))
        .unwrap_or_else(|| url.clone());
    let mut out = Extracted {
        page_links: Vec::new(),
        media_links: Vec::new(),
        base,
        encoding: encoding.name(),
        truncated: found.overflow,
        stopped,
        tag_soup: tag_soup && !found.refs.is_empty(),
    };
    let mut seen: HashSet<(bool, String)> = HashSet::new();
    for (role, raw) in &found.refs {
        let Some(mut link) = out.base.join(raw).ok() else {
            continue;
        };
        if !matches!(link.scheme(), "http" | "https") || link.host().is_none() {
            continue;
        }
        link.set_fragment(None);
        let (list, cap) = match role {
            Role::Page => (&mut out.page_links, config.max_page_links),
            Role::Media => (&mut out.media_links, config.max_media_links),
        };
        if !seen.insert((*role == Role::Page, link.as_str().to_owned())) {
            continue;
        }
        if list.len() >= cap {
            out.truncated = true;
            continue;
        }
        list.push(link);
    }
    out
}

/// Runs the streaming parser over UTF-8 `html`, recording references into `found`.
fn parse(html: &[u8], found: &RefCell<Found>, config: &ExtractConfig) -> Option<ExtractError> {
    let page = |name: &'static str| {
        move |el: &mut Element<'_, '_>| {
            found.borrow_mut().attr(el, name, Role::Page);
            Ok(())
        }
    };
    let media = |name: &'static str| {
        move |el: &mut Element<'_, '_>| {
            found.borrow_mut().attr(el, name, Role::Media);
            Ok(())
        }
    };
    let srcset = |el: &mut Element<'_, '_>| {
        if let Some(value) = el.get_attribute("srcset") {
            let mut found = found.borrow_mut();
            for url in syntax::srcset_urls(&value) {
                found.push(Role::Media, url);
            }
        }
        Ok(())
    };
    // Text of the current <style> element, bounded: CSS beyond the bound is not read.
    let style_text = RefCell::new(String::new());
    let settings = Settings::new()
        .with_strict(false)
        .with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(config.max_parser_memory),
        )
        .append_element_content_handler(element!("base[href]", |el| {
            let mut found = found.borrow_mut();
            if found.base.is_none() {
                found.base = el
                    .get_attribute("href")
                    .map(|h| syntax::decode_char_refs(&h).into_owned());
            }
            Ok(())
        }))
        .append_element_content_handler(element!("a[href]", page("href")))
        .append_element_content_handler(element!("area[href]", page("href")))
        .append_element_content_handler(element!("iframe[src]", page("src")))
        .append_element_content_handler(element!("frame[src]", page("src")))
        .append_element_content_handler(element!("img[src]", media("src")))
        .append_element_content_handler(element!("img[data-src]", media("data-src")))
        .append_element_content_handler(element!("img[srcset]", srcset))
        .append_element_content_handler(element!("source[srcset]", srcset))
        .append_element_content_handler(element!("source[src]", media("src")))
        .append_element_content_handler(element!("video[src]", media("src")))
        .append_element_content_handler(element!("video[poster]", media("poster")));
    let settings = with_meta_and_css(settings, found, &style_text);
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // Fed in slices so the parser's buffers, not one huge write, set the memory profile.
    let result = html
        .chunks(64 * 1024)
        .try_for_each(|chunk| rewriter.write(chunk))
        .and_then(|()| rewriter.end());
    result.err().map(|error| match error {
        lol_html::errors::RewritingError::MemoryLimitExceeded(_) => ExtractError::MemoryLimit {
            limit: config.max_parser_memory,
        },
        other => ExtractError::Parser {
            message: other.to_string(),
        },
    })
}

/// Media references that need a look at more than one attribute, or at CSS.
fn with_meta_and_css<'h>(
    settings: Settings<'h, 'static>,
    found: &'h RefCell<Found>,
    style_text: &'h RefCell<String>,
) -> Settings<'h, 'static> {
    settings
        .append_element_content_handler(element!("link[href]", |el| {
            let is_image = el.get_attribute("rel").is_some_and(|rel| {
                rel.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("image_src"))
            });
            if is_image {
                found.borrow_mut().attr(el, "href", Role::Media);
            }
            Ok(())
        }))
        .append_element_content_handler(element!("meta[content]", |el| {
            let key = el
                .get_attribute("property")
                .or_else(|| el.get_attribute("name"))
                .map(|k| k.to_ascii_lowercase());
            if key.as_deref().is_some_and(is_media_meta) {
                found.borrow_mut().attr(el, "content", Role::Media);
            }
            Ok(())
        }))
        .append_element_content_handler(text!("style", |chunk| {
            let mut css = style_text.borrow_mut();
            if css.len() < MAX_STYLE_BYTES {
                css.push_str(chunk.as_str());
            }
            if chunk.last_in_text_node() {
                let mut found = found.borrow_mut();
                for url in syntax::css_urls(&css) {
                    found.push(Role::Media, &url);
                }
                css.clear();
            }
            Ok(())
        }))
        .append_element_content_handler(element!("[style]", |el| {
            if let Some(style) = el.get_attribute("style") {
                let mut found = found.borrow_mut();
                for url in syntax::css_urls(&style) {
                    found.push(Role::Media, &url);
                }
            }
            Ok(())
        }))
}

fn is_media_meta(key: &str) -> bool {
    matches!(
        key,
        "og:image"
            | "og:image:url"
            | "og:image:secure_url"
            | "og:video"
            | "og:video:url"
            | "og:video:secure_url"
            | "twitter:image"
            | "twitter:image:src"
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
