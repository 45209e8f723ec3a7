"""The awareness texts say what the sources say, in every language (issue 16, "Facts and words").

- A child is trafficked when recruited, moved or held for exploitation, without any "means"
  (000 line 31: "The 'means' element is not a requisite ... when the victim is a child"; 004
  line 205): not "any exploitation of a child is always trafficking" (000 line 60: "Not all
  people who are exploited are victims of trafficking").
- Traffickers *can be* friends or family (000 line 58), not "often".
- Help *should not* depend on going to the police (004 line 704: "not conditional on the
  victim's willingness to cooperate"; line 791: "best practice"): a duty, not a promise every
  country keeps.
"""

from __future__ import annotations

import pytest

from bot.catalog import load_catalog
from bot.deployment import SUPPORTED_LANGUAGES, load_deployment
from bot.keywords import normalise
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog()
# language -> response -> (words that must be there, words that must not)
FACTS = {
    "en": {
        "utter_awareness_trafficking_more": (["under 18", "recruited or moved", "even without force"],
                                             ["always trafficking", "being exploited is"]),
        "utter_awareness_trafficking": (["can be people the person knows"], ["often"]),
        "utter_awareness_rights": (["should not depend on going to the police"], ["does not depend"]),
        "utter_awareness_smuggling_more": (["should not depend"], ["without reporting"]),
    },
    "fr": {
        "utter_awareness_trafficking_more": (["avant 18 ans", "recrute ou deplace", "meme sans force"],
                                             ["toute exploitation"]),
        "utter_awareness_trafficking": (["peut etre des proches"], ["souvent"]),
        "utter_awareness_rights": (["ne devrait pas dependre d aller a la police"], ["ne depend pas"]),
        "utter_awareness_smuggling_more": (["ne devrait pas dependre"], ["sans aller a la police"]),
    },
    "es": {
        "utter_awareness_trafficking_more": (["menores de 18", "reclutarlos o trasladarlos",
                                              "aun sin fuerza"], ["siempre es trata"]),
        "utter_awareness_trafficking": (["puede hacerlo alguien conocido"], ["suele"]),
        "utter_awareness_rights": (["no deberia depender de ir a la policia"], ["no depende"]),
        "utter_awareness_smuggling_more": (["no deberia depender"], ["sin tener que"]),
    },
    "ar": {
        "utter_awareness_trafficking_more": (["دون 18", "تجنيدهم او نقلهم", "حتي دون قوه"],
                                             ["دائما"]),
        "utter_awareness_trafficking": (["قد يكون المتاجرون"], ["كثيرا"]),
        "utter_awareness_rights": (["لا ينبغي ان يتوقف"], ["لا يتوقف علي"]),
        "utter_awareness_smuggling_more": (["لا ينبغي ان تتوقف"], ["دون ابلاغ"]),
    },
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_awareness_texts_follow_the_sources(language):
    for name, (present, absent) in FACTS[language].items():
        text = normalise(CATALOG.texts[language][name])
        for words in present:
            assert normalise(words) in text, (language, name, words)
        for words in absent:
            assert normalise(words) not in text, (language, name, words)


POLICE = {"police", "policia", "شرطه"}


def test_the_samples_emergency_contacts_do_not_put_the_police_first():
    deployment = load_deployment(PROJECT_ROOT / "deploy" / "sample.yml")
    for area in [None, *deployment.emergency_contacts]:
        first = deployment.contacts_for(area)[0]
        for language in deployment.languages:
            assert not set(normalise(first.render(language)).split()) & POLICE, (area, language)


SENSITIVE = {"en": "traffick", "fr": "traite", "es": "trata", "ar": "اتجار"}


def test_no_service_category_shown_names_trafficking():
    """A services search shows the category it looked for ("Looking for: ..."): on a shared
    phone, "anti-trafficking organisation" on the screen can put the person at risk (004,
    'Safety and security'). The code stays internal."""
    from bot.services.categories import load_categories

    categories = load_categories()
    assert "anti_trafficking" in categories
    for code, names in categories.items():
        for language, word in SENSITIVE.items():
            assert word not in names[language].lower(), (code, language)
