//! `lode-server`: serve, admin, gc, fsck.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("lode-server is not built yet")
}
