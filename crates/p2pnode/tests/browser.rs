//! The one real-browser test: headless Chromium (the distribution's `chromium` and `chromium-driver`,
//! driven by Python's selenium, which `.ci/run` installs) opens the page of three nodes on loopback and
//! a guest's page at a phone's size; the script itself is tests/browser.py. Screenshots go to
//! target/screenshots/.

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs chromium, chromium-driver and python3-selenium (CI installs them)"]
fn the_page_and_a_guest_in_a_real_browser() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_p2pnode"));
    // target/debug/p2pnode: the pictures go beside the build, in target/screenshots.
    let shots = bin.parent().and_then(|p| p.parent()).expect("the target folder").join("screenshots");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser.py");
    let home = tempfile::tempdir().expect("home");
    let status = Command::new("python3")
        .arg(script)
        .env("P2PNODE_BIN", &bin)
        .env("SCREENSHOTS", &shots)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the browser test failed: {status}");
}
