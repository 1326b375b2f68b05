//! HTML for simulated pages: galleries, forum threads, directory listings, image boards and
//! plain sites, each shaped like its real counterpart so link extraction meets real variety
//! (absolute and relative links, thumbnails wrapping full images, pagination).
//!
//! Must not decide what is served (that is `site`); only renders what it is given.

use std::fmt::Write;

use crate::scenario::SiteKind;
use crate::world::{MediaItem, Page, Site, Transform};

/// Escapes text for HTML element and attribute content.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render(site: &Site, page: &Page, items: &[&MediaItem]) -> String {
    let mut body = String::new();
    let _ = write!(body, "<nav><a href=\"/\">Home</a>");
    for link in page.links.iter().filter(|l| l.as_str() != "/") {
        let _ = write!(
            body,
            " | <a href=\"{}\">{}</a>",
            escape(link),
            escape(link_label(link))
        );
    }
    body.push_str("</nav>\n");
    match site.kind {
        // The home page is the section list in the nav, whatever the site's kind.
        _ if page.path == "/" && items.is_empty() => {
            body.push_str("<p>Welcome. Pick a section above.</p>\n")
        }
        SiteKind::Gallery | SiteKind::Imageboard => thumbnails(&mut body, site.kind, items),
        SiteKind::Forum => posts(&mut body, items),
        SiteKind::Directory => listing(&mut body, page, items),
        SiteKind::Plain => articles(&mut body, items),
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><h1>{}</h1>\n{body}\
         <footer>Hosted at {} &middot; <a href=\"/about.html\">about</a></footer></body></html>\n",
        escape(&page.title),
        escape(&page.title),
        escape(&site.host),
    )
}

fn link_label(link: &str) -> &str {
    link.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(link)
}

/// Full images paired with the thumbnails that link to them; unpaired ones shown directly.
fn thumbnails(body: &mut String, kind: SiteKind, items: &[&MediaItem]) {
    body.push_str("<div class=\"grid\">\n");
    let mut i = 0;
    while let Some(item) = items.get(i) {
        match items.get(i + 1) {
            Some(thumb) if matches!(thumb.transform, Transform::Thumbnail { .. }) => {
                let _ = writeln!(
                    body,
                    "<figure><a href=\"{}\" target=\"_blank\"><img src=\"{}\" alt=\"\" loading=\"lazy\" width=\"160\"></a>\
                     <figcaption>{}</figcaption></figure>",
                    escape(&item.path),
                    escape(&thumb.path),
                    if kind == SiteKind::Imageboard {
                        "File"
                    } else {
                        "Photo"
                    }
                );
                i += 2;
            }
            _ => {
                let _ = writeln!(
                    body,
                    "<figure><img src=\"{}\" alt=\"upload\"></figure>",
                    escape(&item.path)
                );
                i += 1;
            }
        }
    }
    body.push_str("</div>\n");
}

fn posts(body: &mut String, items: &[&MediaItem]) {
    for (n, item) in items.iter().enumerate() {
        let _ = writeln!(
            body,
            "<div class=\"post\" id=\"p{n}\"><div class=\"author\">user{}</div><p>Look at this one, posted #{n}.</p>\
             <img src=\"{}\" alt=\"attachment\"></div>",
            item.id % 97,
            escape(&item.path)
        );
    }
    if items.is_empty() {
        body.push_str("<div class=\"post\"><p>No attachments in this thread yet.</p></div>\n");
    }
}

/// Apache-style index with relative links, as `mod_autoindex` writes them.
fn listing(body: &mut String, page: &Page, items: &[&MediaItem]) {
    let _ = writeln!(
        body,
        "<pre><a href=\"?C=N;O=D\">Name</a>  <a href=\"?C=M;O=A\">Last modified</a>\n<hr><a href=\"../\">Parent Directory</a>"
    );
    let dir = page.path.split('?').next().unwrap_or("/");
    for item in items {
        let name = item.path.strip_prefix(dir).unwrap_or(&item.path);
        let _ = writeln!(
            body,
            "<a href=\"{}\">{}</a>  2025-0{}-1{} 12:00  -",
            escape(name),
            escape(name),
            1 + item.id % 9,
            item.id % 10
        );
    }
    body.push_str("<hr></pre>\n");
}

fn articles(body: &mut String, items: &[&MediaItem]) {
    body.push_str("<article><p>Notes on gardening, weather and the local football club.</p>\n");
    for item in items {
        let _ = writeln!(
            body,
            "<p><img src=\"{}\" alt=\"illustration\"></p>",
            escape(&item.path)
        );
    }
    body.push_str("</article>\n");
}

/// A page with broken markup that still carries links (unclosed tags, bad nesting, stray quotes).
pub fn broken_html(first_item: Option<&str>) -> String {
    let img = first_item.unwrap_or("/nothing.jpg");
    format!(
        "<html><head><title>broken<title></head><body><div><p>unclosed <b>bold <i>italic</b> text\n\
         <a href=/quirks/>unquoted link</a><a href='/' >single</a><img src=\"{img}\" alt=\"x\" <table><tr><td>cell\n\
         <a href=\"/quirks/redirect/chain/2\"\" class=>double quote</a><!-- unterminated comment <a href=\"/hidden\">\n\
         <script>document.write('<a href=\"/from-script\">')</script>\n&bogus; &#xZZ; \u{0}\u{1}"
    )
}
