//! snaplabel's browser app (Leptos, client-side rendered, compiled to WebAssembly).
//!
//! - [`logic`]: the decisions (state machine, polling schedule, file checks, result → rows and
//!   boxes), plain Rust, unit-tested natively.
//! - [`net`]: `/config.json`, the guest identity, the presign API, the XMLHttpRequest upload with
//!   progress, HEAD polling.
//! - `app`: the components.

mod app;
pub mod logic;
pub mod net;

/// Mounts the app on `<body>`.
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
