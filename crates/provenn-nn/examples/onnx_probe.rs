//! Prints an imported ONNX network's output at one input (for spot checks against other tools).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("read the ONNX file");
    let net = provenn_nn::onnx::import_onnx(&bytes).expect("import");
    let x: Vec<f64> = args[2]
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect();
    println!(
        "{:?}",
        net.forward(&nalgebra::DVector::from_vec(x))
            .expect("forward")
            .as_slice()
    );
}
