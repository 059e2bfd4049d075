//! Property tests of provenn-data: splits partition the rows, and loaders reject arbitrary
//! file contents with errors instead of panicking.
use proptest::prelude::*;
use provenn_data::split::{k_fold, train_val_test};
use provenn_data::{loaders, DataDir};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn k_fold_holds_out_every_row_once(n in 2usize..200, k in 2usize..10, seed in any::<u64>(), classes in 1usize..4) {
        prop_assume!(k <= n);
        let strata: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % classes).collect();
        let folds = k_fold(n, k, Some(&strata), seed).unwrap();
        let mut seen = vec![0; n];
        for f in &folds {
            for &i in &f.test { seen[i] += 1; }
            prop_assert_eq!(f.train.len() + f.test.len(), n);
            prop_assert!(f.train.iter().all(|i| !f.test.contains(i)));
        }
        prop_assert!(seen.iter().all(|&c| c == 1));
        // Stratified: fold sizes per class differ by at most one.
        for c in 0..classes {
            let sizes: Vec<usize> = folds.iter().map(|f| f.test.iter().filter(|&&i| strata[i] == c).count()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn three_way_split_is_a_partition(n in 1usize..300, v in 0.0f64..0.4, t in 0.0f64..0.4, seed in any::<u64>()) {
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let s = train_val_test(n, v, t, Some(&labels), seed).unwrap();
        let mut all: Vec<usize> = s.train.iter().chain(&s.validation).chain(&s.test).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
        let again = train_val_test(n, v, t, Some(&labels), seed).unwrap();
        prop_assert_eq!(s, again);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random CSV-like and arbitrary text in every loader's file: an error or a dataset, never
    /// a panic.
    #[test]
    fn loaders_never_panic_on_arbitrary_files(text in prop_oneof![
        "[0-9,.\\-\n\"a-z?\t ]{0,400}",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        Just("3,4,a,b,c\n1,2,3,4,0\n1,2,3,4,1\n".to_string()),
        Just("10\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n7,g\n8,h\n9,i\n10,j\n1,1,1\n1,1,2,3,4,5,6,7,8,9,9\n".to_string()),
    ], which in 0usize..7, flag in any::<bool>()) {
        let dir = std::env::temp_dir().join(format!("provenn-fuzz-{}-{which}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = DataDir::new(&dir);
        let files = ["iris.csv", "sonar.csv", "expenses.csv", "loan.csv", "sushi.soc", "heart_disease.tab", "wine.csv"];
        std::fs::write(dir.join(files[which]), &text).unwrap();
        let _ = match which {
            0 => loaders::iris(&d).map(|_| ()),
            1 => loaders::sonar(&d).map(|_| ()),
            2 => loaders::expenses(&d).map(|_| ()),
            3 => loaders::loan(&d, flag).map(|_| ()),
            4 => loaders::sushi(&d).map(|_| ()),
            5 => loaders::heart(&d).map(|_| ()),
            _ => loaders::wine(&d).map(|_| ()),
        };
        // One directory per process and loader, removed after each case (a panic above
        // leaves it behind for inspection).
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
