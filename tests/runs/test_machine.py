import platform

from ablate.runs.machine import cpu_model, machine

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu amx_bf16

processor\t: 1
model name\t: another
"""


def test_cpu_model_names_family_and_model_of_the_first_cpu(tmp_path):
    (tmp_path / "cpuinfo").write_text(XEON)
    assert cpu_model(tmp_path / "cpuinfo") == "Intel(R) Xeon(R) Processor (family 6 model 207)"


def test_without_cpuinfo_the_platform_names_the_processor(tmp_path):
    assert cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine())


def test_machine_is_what_result_json_records(tmp_path):
    info = machine()
    assert set(info) == {"cpu", "cores", "gpu"} and info["cores"] >= 1 and isinstance(info["cpu"], str)
