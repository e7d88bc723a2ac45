use super::*;

const DEFAULTS: VmDefaults = VmDefaults {
    mem_mib: 256,
    cpus: 1,
    overhead_mib: GUEST_OVERHEAD_MIB,
};

fn res(json: &str) -> LinuxResources {
    crate::bundle::spec::resources::parse(json).unwrap()
}

fn size(json: &str) -> Result<(u32, u32), ResourceError> {
    vm_size(Some(&res(json)), DEFAULTS)
}

#[test]
fn no_limits_give_the_defaults() {
    assert_eq!(vm_size(None, DEFAULTS), Ok((256, 1)));
    assert_eq!(size("{}"), Ok((256, 1)));
    assert_eq!(size(r#"{"memory": {"limit": -1}}"#), Ok((256, 1)));
    assert_eq!(size(r#"{"memory": {"limit": 0}}"#), Ok((256, 1)));
    let two = VmDefaults {
        mem_mib: 512,
        cpus: 2,
        overhead_mib: GUEST_OVERHEAD_MIB,
    };
    assert_eq!(vm_size(Some(&res("{}")), two), Ok((512, 2)));
}

#[test]
fn the_overhead_is_configurable() {
    let none = VmDefaults {
        overhead_mib: 0,
        ..DEFAULTS
    };
    // 640 MiB + 0 + 10 (its struct pages).
    assert_eq!(
        vm_size(Some(&res(r#"{"memory": {"limit": 671088640}}"#)), none),
        Ok((650, 1))
    );
}

#[test]
fn a_memory_limit_sizes_the_guest() {
    // 512 MiB + 48 + 512/64.
    assert_eq!(size(r#"{"memory": {"limit": 536870912}}"#), Ok((568, 1)));
    // Rounded up to whole MiB: 1 GiB + 1 byte is 1025 MiB (+ 48 + 17).
    assert_eq!(size(r#"{"memory": {"limit": 1073741825}}"#), Ok((1090, 1)));
    // Small limits still get a bootable guest.
    assert_eq!(
        size(r#"{"memory": {"limit": 6291456}}"#),
        Ok((MIN_MEM_MIB as u32, 1))
    );
}

#[test]
fn more_than_32_gib_is_an_error() {
    let limit = (MAX_MEM_MIB - GUEST_OVERHEAD_MIB - 600) << 20;
    let (mem, _) = size(&format!(r#"{{"memory": {{"limit": {limit}}}}}"#)).unwrap();
    assert!(u64::from(mem) <= MAX_MEM_MIB);
    let e = size(r#"{"memory": {"limit": 34359738368}}"#).unwrap_err();
    assert!(matches!(e, ResourceError::TooMuchMemory { .. }));
    assert!(e.to_string().contains("the most is 32768 MiB"), "{e}");
}

#[test]
fn cpu_quota_rounds_up_to_whole_vcpus() {
    assert_eq!(
        size(r#"{"cpu": {"quota": 150000, "period": 100000}}"#),
        Ok((256, 2))
    );
    assert_eq!(size(r#"{"cpu": {"quota": 50000}}"#), Ok((256, 1)));
    assert_eq!(size(r#"{"cpu": {"quota": 400000}}"#), Ok((256, 4)));
    assert_eq!(
        size(r#"{"cpu": {"quota": -1, "period": 100000}}"#),
        Ok((256, 1))
    );
    assert_eq!(
        size(r#"{"cpu": {"quota": 100000000, "period": 1000}}"#),
        Ok((256, MAX_CPUS))
    );
}

#[test]
fn the_cpuset_bounds_the_vcpus() {
    assert_eq!(
        size(r#"{"cpu": {"quota": 800000, "cpus": "0-2"}}"#),
        Ok((256, 3))
    );
    assert_eq!(
        size(r#"{"cpu": {"quota": 200000, "cpus": "0-7"}}"#),
        Ok((256, 2))
    );
    assert_eq!(size(r#"{"cpu": {"cpus": ""}}"#), Ok((256, 1)));
    assert_eq!(
        size(r#"{"cpu": {"cpus": "0-x"}}"#),
        Err(ResourceError::BadCpuList("0-x".into()))
    );
}

#[test]
fn cpu_lists_are_counted() {
    assert_eq!(cpu_list_len("0"), Ok(1));
    assert_eq!(cpu_list_len("0-3,7"), Ok(5));
    assert_eq!(cpu_list_len(" 1,1,2-3 "), Ok(3));
    for bad in ["", "3-1", "a", "0-", "1,,2", "99999"] {
        assert!(cpu_list_len(bad).is_err(), "{bad}");
    }
}

#[test]
fn agent_resources_follow_runc_conventions() {
    let r = agent_resources(&res(
        r#"{"memory": {"limit": 1048576, "reservation": 524288}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": 64}}"#,
    ));
    assert_eq!(
        r,
        Resources {
            memory_max: Some(1 << 20),
            memory_low: Some(1 << 19),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpu_weight: Some(39),
            pids_max: Some(64),
        }
    );
    let unlimited = agent_resources(&res(
        r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}}"#,
    ));
    assert_eq!(unlimited.memory_max, Some(MEMORY_UNLIMITED));
    assert_eq!(unlimited.cpu_quota, Some(-1));
    assert_eq!(unlimited.pids_max, Some(-1));
    let unset = agent_resources(&res(
        r#"{"memory": {"limit": 0}, "cpu": {"shares": 0, "cpus": "0"}}"#,
    ));
    assert!(unset.is_empty(), "{unset:?}");
}

#[test]
fn memory_sizes_parse_like_runc_update() {
    assert_eq!(parse_memory_size("1024"), Ok(1024));
    assert_eq!(parse_memory_size("512m"), Ok(512 << 20));
    assert_eq!(parse_memory_size("2G"), Ok(2 << 30));
    assert_eq!(parse_memory_size("4kb"), Ok(4096));
    assert_eq!(parse_memory_size("-1"), Ok(-1));
    for bad in ["", "m", "-2", "1.5g", "12x", "99999999999t"] {
        assert!(parse_memory_size(bad).is_err(), "{bad}");
    }
}
