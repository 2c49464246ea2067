"""The review page: written by every run and by `sada-hf review`, bounded, and driven in a real headless
Chromium (Debian's chromium and chromedriver; in CI, where `CI=true`, a missing browser fails the test)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from sada_hf import SADAConfig, SADATrainer, SADATransform, apply_decisions
from sada_hf.cli import main
from sada_hf.data import DataArguments, load_splits
from sada_hf.label_issues import rank_label_issues
from sada_hf.review import (
    DECISIONS_FILE,
    REVIEW_PAGE,
    SAMPLE_THUMBNAILS,
    TOP_THUMBNAILS,
    data_map_regions,
    review_page,
    thumbnail_positions,
)

from conftest import tiny_vit, training_args

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def page_data(page: str) -> dict:
    """The JSON block the page's script reads."""
    block = re.search(r'<script id="sada-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def synthetic_issues(dataset, num_classes: int = 10, suspects: int = 60, with_ids: bool = False, seed: int = 0):
    """A ranking of `dataset`'s examples from made-up statistics: the first `suspects` examples (by AUM)
    are right in under a quarter of their steps and predicted as another class, the rest are right."""
    count = len(dataset)
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset["label"])
    order = rng.permutation(count)  # example order[k] has the k-th lowest AUM
    aum = np.empty(count)
    aum[order] = np.sort(rng.normal(1.0, 1.0, count))
    is_suspect = np.zeros(count, dtype=bool)
    is_suspect[order[:suspects]] = True
    predicted = np.where(is_suspect, (labels + 1 + order % 2) % num_classes, labels)
    stats = {
        "index": np.arange(count),
        "row": np.asarray(dataset["row"]),
        "label": labels,
        "predicted": predicted,
        "suggested": predicted,
        "aum": aum,
        "confidence": np.where(is_suspect, 0.1, 0.9) + rng.uniform(-0.05, 0.05, count),
        "variability": rng.uniform(0.0, 0.3, count),
        "correctness": np.where(is_suspect, 0.1, 0.9),
        "step_visits": np.full(count, 4),
    }
    if with_ids:
        stats["id"] = issues_ids(dataset)
    return rank_label_issues(stats)


def issues_ids(dataset) -> np.ndarray:
    """Made-up ids with a comma in each, which the export must quote."""
    return np.asarray([f"images/{row},{row % 7}.jpg" for row in dataset["row"]], dtype=object)


# ---- without a browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A SADA run on 200 digits, the training set `sada-hf review --max_train_samples 200` loads again."""
    output_dir = tmp_path_factory.mktemp("review") / "digits-run"
    train = load_splits(DataArguments(max_train_samples=200), seed=42)["train"]
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(output_dir, num_train_epochs=3),
        train_dataset=train.with_transform(SADATransform(size=32, config=SADAConfig(window=2))),
    )
    trainer.train()
    trainer.create_model_card()
    return trainer


def test_every_run_writes_the_page_and_the_card_links_it(digits_run):
    output_dir = Path(digits_run.args.output_dir)
    data = page_data((output_dir / REVIEW_PAGE).read_text())
    issues = digits_run.label_issues()
    assert data["examples"]["row"] == issues["row"] and data["examples"]["given"] == issues["given_label"]
    assert sum(data["examples"]["suspect"]) == sum(issues["suspect"])
    assert data["classes"] == [str(digit) for digit in range(10)]
    card = ModelCard.load(output_dir / "README.md").text
    assert f"[{REVIEW_PAGE}]({REVIEW_PAGE})" in card


def test_review_command_writes_the_same_page_and_refuses_other_data(digits_run, capsys):
    path = Path(digits_run.args.output_dir) / REVIEW_PAGE
    written_by_run = path.read_text()
    path.unlink()
    main(["review", str(path.parent), "--max_train_samples", "200"])
    assert path.read_text() == written_by_run
    assert str(path) in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not the one the run .* trained on.*--seed"):
        main(["review", str(path.parent), "--max_train_samples", "200", "--seed", "1"])
    with pytest.raises(SystemExit, match="No sada_examples.parquet"):
        main(["review", str(path.parent.parent)])


def test_thumbnails_are_the_top_suspects_and_a_sample_of_the_others():
    suspect = np.zeros(3000, dtype=bool)
    suspect[::4] = True  # 750 suspects
    positions = thumbnail_positions(suspect)
    assert len(positions) == TOP_THUMBNAILS + SAMPLE_THUMBNAILS and np.all(np.diff(positions) > 0)
    top = np.flatnonzero(suspect)[:TOP_THUMBNAILS]
    assert np.isin(top, positions).all() and np.array_equal(positions, thumbnail_positions(suspect))
    few = thumbnail_positions(np.arange(20) < 3)  # fewer examples than the bounds: all of them
    assert few.tolist() == list(range(20))


def test_regions_follow_confidence_and_variability():
    confidence = np.array([0.9, 0.2, 0.9, 0.2, 0.6, 0.4])
    variability = np.array([0.01, 0.02, 0.30, 0.31, 0.05, 0.03])
    assert data_map_regions(confidence, variability).tolist() == [0, 2, 1, 1, 0, 2]


def test_too_few_class_names_is_refused(cifar_train):
    issues = synthetic_issues(cifar_train)
    with pytest.raises(ValueError, match="class 9 but 5 class names"):
        review_page(issues, cifar_train, "image", [str(c) for c in range(5)])


# ---- in the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven through Debian's chromedriver (never a downloaded one)."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file() and importlib.util.find_spec("selenium")):
        message = (
            "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium "
            "chromium-driver) and selenium (pip install -e '.[dev]')"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must install them (.ci/run)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def open_page(browser, tmp_path, page: str):
    path = tmp_path / REVIEW_PAGE
    path.write_text(page, encoding="utf-8")
    browser.get(path.as_uri())
    browser.execute_script("localStorage.clear()")
    browser.get(path.as_uri())
    return path


def console_errors(browser) -> list[dict]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def exported(browser) -> str:
    """Click "Export decisions" and read the file the browser saved."""
    target = Path(browser.downloads) / DECISIONS_FILE
    target.unlink(missing_ok=True)
    browser.find_element("id", "export").click()
    deadline = time.monotonic() + 10
    while not target.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    return target.read_text(encoding="utf-8")


@pytest.mark.parametrize("with_ids", [False, True])
def test_page_shows_the_counts_marks_with_click_and_key_and_exports_the_decisions(
    browser, tmp_path, cifar_train, with_ids
):
    from selenium.webdriver.common.by import By

    issues = synthetic_issues(cifar_train, with_ids=with_ids)
    names = cifar_train.features["label"].names
    path = open_page(browser, tmp_path, review_page(issues, cifar_train, "image", names))
    assert console_errors(browser) == []
    assert text(browser, "n-examples") == "300" and text(browser, "n-suspects") == "60"
    assert text(browser, "n-thumbs") == "300"  # fewer examples than the bounds: every one has a thumbnail
    cards = browser.find_elements(By.CSS_SELECTOR, "#grid .card")
    assert [int(card.get_attribute("data-row")) for card in cards] == issues["row"][:60]

    # The class-pair table: (given, suggested) counts among the suspects; a row filters the grid to its pair.
    pairs = {}
    for given, suggested in zip(issues["given_label"][:60], issues["suggested_label"][:60]):
        pairs[(given, suggested)] = pairs.get((given, suggested), 0) + 1
    first = browser.find_element(By.CSS_SELECTOR, "#pairs tbody tr")
    given, suggested, count = (cell.text for cell in first.find_elements(By.TAG_NAME, "td"))
    pair = (names.index(given), names.index(suggested))
    assert int(count) == pairs[pair] == max(pairs.values())
    first.click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == pairs[pair]
    browser.find_element("id", "clear").click()

    # A click marks the first suspect dropped; a click selects the second and a key relabels it to the
    # suggested class; the third is kept by key.
    cards = browser.find_elements(By.CSS_SELECTOR, "#grid .card")
    cards[0].find_element(By.CSS_SELECTOR, "button.drop").click()
    body = browser.find_element(By.TAG_NAME, "body")
    cards[1].click()
    body.send_keys("s")
    cards[2].click()
    body.send_keys("k")
    assert "drop" in cards[0].get_attribute("class") and "relabel" in cards[1].get_attribute("class")
    assert text(browser, "n-marked") == "3"
    browser.get(path.as_uri())  # the marks survive a reload
    assert text(browser, "n-marked") == "3"

    # The exported file: one line per mark, sorted by row; the cleaning function accepts it and gives the
    # dataset without the dropped example, the relabelled one in its suggested class, the rest unchanged.
    rows, given_labels, suggested = issues["row"], issues["given_label"], issues["suggested_label"]
    expected = {rows[0]: ("drop", ""), rows[1]: ("relabel", str(suggested[1])), rows[2]: ("keep", "")}
    text_exported = exported(browser)
    lines = list(csv.reader(text_exported.splitlines()))
    header = ["row", "id", "given_label", "action", "label"] if with_ids else ["row", "given_label", "action", "label"]
    assert lines[0] == header
    want = []
    for row in sorted(expected):
        position = rows.index(row)
        identity = [issues["id"][position]] if with_ids else []
        want.append([str(row), *identity, str(given_labels[position]), *expected[row]])
    assert lines[1:] == want

    decisions = tmp_path / DECISIONS_FILE
    decisions.write_text(text_exported, encoding="utf-8")
    dataset = cifar_train.add_column("file", issues_ids(cifar_train)) if with_ids else cifar_train
    cleaned = apply_decisions(dataset, decisions, id_column="file" if with_ids else None)
    before = dict(zip(cifar_train["row"], cifar_train["label"]))
    after = dict(zip(cleaned["row"], cleaned["label"]))
    assert len(cleaned) == len(cifar_train) - 1 and rows[0] not in after
    assert after[rows[1]] == suggested[1] != before[rows[1]]
    assert all(after[row] == before[row] for row in after if row != rows[1])
    assert console_errors(browser) == []


def test_page_with_100_unnamed_classes(browser, tmp_path, cifar_train):
    from selenium.webdriver.common.by import By

    issues = synthetic_issues(cifar_train, num_classes=100, suspects=25)
    open_page(browser, tmp_path, review_page(issues, cifar_train, "image", [str(c) for c in range(100)]))
    assert console_errors(browser) == []
    assert text(browser, "n-suspects") == "25"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#class option")) == 101  # "any" and each class
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == 25


def test_page_without_suspects_says_so(browser, tmp_path, cifar_train):
    from selenium.webdriver.common.by import By

    issues = synthetic_issues(cifar_train, suspects=0)
    open_page(browser, tmp_path, review_page(issues, cifar_train, "image", cifar_train.features["label"].names))
    assert console_errors(browser) == []
    assert text(browser, "n-suspects") == "0" and browser.find_elements(By.CSS_SELECTOR, "#grid .card") == []
    assert text(browser, "empty").startswith("No suspects")
