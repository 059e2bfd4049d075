//! Forward and training-step throughput on the MNIST-sized network of the issue
//! (batch 256, 784-100-100-10).
#![allow(missing_docs)] // criterion_group! generates undocumented items
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nalgebra::DMatrix;
use provenn_nn::{loss::SoftmaxCrossEntropy, Activation, MlpBuilder};

fn bench(c: &mut Criterion) {
    let net = MlpBuilder::new(784)
        .hidden(100, Activation::Relu)
        .hidden(100, Activation::Relu)
        .output(10, Activation::Identity)
        .seed(1)
        .build()
        .unwrap();
    let x = DMatrix::from_fn(256, 784, |i, j| ((i * 31 + j * 17) % 255) as f64 / 255.0);
    let y = DMatrix::from_fn(256, 10, |i, j| f64::from(u8::from(i % 10 == j)));
    c.bench_function("nn_forward/batch256_784-100-100-10", |b| {
        b.iter(|| net.forward_batch(black_box(&x)).unwrap())
    });
    c.bench_function("nn_forward/single_784-100-100-10", |b| {
        let x0 = x.row(0).transpose();
        b.iter(|| net.forward(black_box(&x0)).unwrap())
    });
    c.bench_function("nn_forward/loss_gradient_batch256", |b| {
        b.iter(|| {
            net.loss_gradient(black_box(&x), &y, &SoftmaxCrossEntropy)
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
