// The app's commands get `allow-<command>` permissions generated; the capability grants
// exactly the ones the UI calls (capabilities/default.json).
fn main() {
    // tauri-build's own rerun-if-changed lines cover only its config and capability files.
    println!("cargo:rerun-if-changed=src/command_names.rs");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(processops_commands::ALL)),
    )
    .unwrap_or_else(|e| {
        eprintln!("tauri build failed: {e:#}");
        std::process::exit(1)
    });
}

#[path = "src/command_names.rs"]
mod processops_commands;
