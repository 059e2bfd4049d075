#![no_main]
use libfuzzer_sys::fuzz_target;
use provenn_dsl::{compile, vnnlib::read_vnnlib, Bindings};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let b = Bindings::anonymous(&[(0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)], 4);
        let _ = compile(s, &b);
        let _ = read_vnnlib(s);
    }
});
