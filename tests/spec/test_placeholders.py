"""Finding and filling <AZURE_BATCHAI_STORAGE_...> placeholders."""

from openbai.spec import find_placeholders, substitute_placeholders
from openbai.spec.placeholders import STORAGE_ACCOUNT_PLACEHOLDER, STORAGE_KEY_PLACEHOLDER

DOCUMENT = {
    "properties": {
        "mountVolumes": {
            "azureFileShares": [
                {
                    "azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/logs",
                    "relativeMountPath": "logs",
                }
            ],
            "azureBlobFileSystems": [
                {
                    "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
                    "containerName": "data",
                    "credentials": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
                    "relativeMountPath": "data",
                }
            ],
        },
        "nodeCount": 2,
        "customToolkitSettings": {"commandLine": "python a.py < in.txt > out.txt"},
    }
}


def test_find_placeholders_lists_each_once_in_order() -> None:
    assert find_placeholders(DOCUMENT) == [STORAGE_ACCOUNT_PLACEHOLDER, STORAGE_KEY_PLACEHOLDER]


def test_shell_redirections_are_not_placeholders() -> None:
    assert find_placeholders({"commandLine": "a < b > c", "x": "<lower>"}) == []


def test_substitute_fills_every_string_and_leaves_the_input_alone() -> None:
    filled = substitute_placeholders(
        DOCUMENT,
        {"AZURE_BATCHAI_STORAGE_ACCOUNT": "acct", "<AZURE_BATCHAI_STORAGE_KEY>": "KEY=="},
    )

    volumes = filled["properties"]["mountVolumes"]
    assert (
        volumes["azureFileShares"][0]["azureFileUrl"] == "https://acct.file.core.windows.net/logs"
    )
    assert volumes["azureBlobFileSystems"][0]["accountName"] == "acct"
    assert volumes["azureBlobFileSystems"][0]["credentials"] == {"accountKey": "KEY=="}
    assert filled["properties"]["nodeCount"] == 2
    assert find_placeholders(filled) == []
    assert find_placeholders(DOCUMENT) == [STORAGE_ACCOUNT_PLACEHOLDER, STORAGE_KEY_PLACEHOLDER]


def test_placeholders_without_a_value_stay() -> None:
    filled = substitute_placeholders(DOCUMENT, {"AZURE_BATCHAI_STORAGE_ACCOUNT": "acct"})

    assert find_placeholders(filled) == [STORAGE_KEY_PLACEHOLDER]
