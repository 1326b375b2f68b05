//! What the `aranea` binary's tests share.

use aranea_simweb::RunningWorld;

/// The start of a `[crawl]` table that lets the crawler reach the simulated web and only it:
/// its providers' address blocks, its DNS server, its CA. Tests append their own keys.
pub fn simweb_crawl_table(world: &RunningWorld) -> String {
    let blocks: Vec<String> = world
        .world()
        .providers
        .iter()
        .flat_map(|p| p.blocks.iter())
        .map(|b| format!("\"{}/{}\"", b.base, b.prefix))
        .collect();
    let ca = world
        .ca_cert_path()
        .map(|p| format!("\"{}\"", p.display()))
        .unwrap_or_default();
    format!(
        "[crawl]\nallow_cidrs = [{}]\nname_servers = [\"{}\"]\nsystem_roots = false\n\
         ca_files = [{ca}]\n",
        blocks.join(", "),
        world.dns_addr()
    )
}
