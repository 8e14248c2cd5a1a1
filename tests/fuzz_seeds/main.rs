//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`), made from real exchanges: sessions
//! on virtual time (every authentication method, MPPE, Deflate, IPv6CP, Multilink, LCP options,
//! rejects, echo, termination, PPPoE), simulated modems, RADIUS packets, TCP SYNs and ICMP
//! echoes, each converted into its target's input format. Several targets share their harness
//! with this file (`fuzz/harness/`), so that seeds are written in exactly the format the target
//! reads and replayed here exactly as the target runs them.
//!
//! `PPP_WRITE_FUZZ_CORPUS=1 cargo test --test fuzz_seeds` writes the corpus; without it the test
//! checks that every target has seeds, that the committed seeds are the ones this generator
//! makes, and that each one still does what it is for (parses, decrypts, brings a link up, gets
//! a RADIUS answer accepted...). See docs/fuzzing.md.

mod checks;
mod seeds;
mod sessions;

#[path = "../../fuzz/harness/auth_exchange.rs"]
mod auth_exchange;
#[path = "../../fuzz/harness/ccp_decompress.rs"]
mod ccp_decompress;
#[path = "../../fuzz/harness/link_frames.rs"]
mod link_frames;
#[path = "../../fuzz/harness/mp_reassembly.rs"]
mod mp_reassembly;
#[path = "../../fuzz/harness/pppoe_discovery.rs"]
mod pppoe_discovery_harness;
#[path = "../../fuzz/harness/radius_client.rs"]
mod radius_client;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seeds by target, then by file name.
pub type Corpus = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Largest seed file: small inputs run fast and mutate well.
const MAX_SEED_LEN: usize = 8 * 1024;
/// Most seeds for one target.
const MAX_SEEDS: usize = 300;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The targets `fuzz/Cargo.toml` declares.
fn targets() -> Vec<String> {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    manifest["bin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bin| bin["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether libFuzzer named the file (the SHA-1 of its contents): new inputs of a local run, not
/// seeds (`fuzz/.gitignore` keeps them out of the repository).
fn is_libfuzzer_name(name: &str) -> bool {
    name.len() == 40
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_target_has_seeds_and_they_are_current() {
    let corpus = seeds::generate();
    let targets = targets();
    assert_eq!(
        corpus.keys().cloned().collect::<Vec<_>>(),
        {
            let mut sorted = targets.clone();
            sorted.sort();
            sorted
        },
        "a generator for every target in fuzz/Cargo.toml"
    );
    for (target, seeds) in &corpus {
        assert!(
            (10..=MAX_SEEDS).contains(&seeds.len()),
            "{target}: {} seeds",
            seeds.len()
        );
        for (name, bytes) in seeds {
            assert!(
                !is_libfuzzer_name(name) && !name.contains('/'),
                "{target}/{name}"
            );
            assert!(
                bytes.len() <= MAX_SEED_LEN,
                "{target}/{name}: {} bytes",
                bytes.len()
            );
            checks::check(target, name, bytes);
        }
    }
    let total: usize = corpus.values().flat_map(|s| s.values()).map(Vec::len).sum();
    let files: usize = corpus.values().map(BTreeMap::len).sum();
    println!("{files} seeds, {total} bytes, for {} targets", corpus.len());

    let root = fuzz_dir().join("corpus");
    if std::env::var_os("PPP_WRITE_FUZZ_CORPUS").is_some_and(|v| v == "1") {
        for (target, seeds) in &corpus {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for name in seed_files(&dir) {
                if !seeds.contains_key(&name) {
                    std::fs::remove_file(dir.join(&name)).unwrap();
                }
            }
            for (name, bytes) in seeds {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            println!(
                "{target}: {} seeds written to {}",
                seeds.len(),
                dir.display()
            );
        }
        return;
    }
    let mut drifted = Vec::new();
    for (target, seeds) in &corpus {
        let dir = root.join(target);
        let on_disk = seed_files(&dir);
        let expected: Vec<String> = seeds.keys().cloned().collect();
        assert_eq!(
            on_disk,
            expected,
            "{}: the committed seeds are not the generator's; run \
             `PPP_WRITE_FUZZ_CORPUS=1 cargo test --test fuzz_seeds` and commit fuzz/corpus",
            dir.display()
        );
        for name in on_disk {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            // A seed written by an older generator still has to do its job.
            checks::check(target, &name, &bytes);
            if bytes != seeds[&name] {
                drifted.push(format!("{target}/{name}"));
            }
        }
    }
    if !drifted.is_empty() {
        println!(
            "{} committed seeds differ from what the generator makes now (they still pass their \
             checks; regenerate to refresh them): {drifted:?}",
            drifted.len()
        );
    }
}

/// The seed files in `dir` (not libFuzzer's), sorted; none if it does not exist.
fn seed_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !is_libfuzzer_name(name) && !name.starts_with('.'))
        .collect();
    names.sort();
    names
}
