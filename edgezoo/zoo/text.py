"""Sentences written for edgezoo's text evaluation (released with edgezoo, Apache-2.0).

``PAIRS``: (sentence, sentence, paraphrase?) - paraphrases say the same thing in other
words; unrelated pairs often share words but not meaning, so the task is not trivial.
``CALIBRATION``: other sentences of the same kinds, for quantizers' ranges only.
"""

from __future__ import annotations

PAIRS = (
    ("The train to London leaves at seven in the morning.", "The London train departs at 7 am.", True),
    ("Please turn off the lights in the kitchen.", "Switch the kitchen lights off, please.", True),
    ("The meeting has been moved to Thursday afternoon.", "We rescheduled the meeting for Thursday after lunch.", True),
    ("My phone battery is almost empty.", "My mobile is nearly out of charge.", True),
    ("He bought a new bicycle for his daughter.", "He got his daughter a new bike.", True),
    ("It is going to rain heavily tomorrow.", "Tomorrow there will be a lot of rain.", True),
    ("The restaurant was too noisy to talk.", "It was so loud in the restaurant that we could not hold a conversation.", True),
    ("She forgot her keys at the office.", "She left her keys at work.", True),
    ("The software update fixed the crash on startup.", "After the update the program no longer crashes when it starts.", True),
    ("Children should wear helmets when cycling.", "Kids ought to put on a helmet to ride a bike.", True),
    ("The museum is closed on Mondays.", "On Mondays the museum does not open.", True),
    ("I would like a cup of black coffee.", "Could I have a black coffee, please?", True),
    ("The river flooded the lower part of the town.", "Parts of the town near the river were under water.", True),
    ("Our flight was delayed by three hours.", "The plane left three hours late.", True),
    ("The doctor told him to rest for a week.", "He was advised by his physician to take a week off to recover.", True),
    ("The price of petrol went up again.", "Fuel has become more expensive once more.", True),
    ("This laptop is light and easy to carry.", "The notebook computer weighs little and is portable.", True),
    ("The team won the final in extra time.", "They took the championship match after extra time.", True),
    ("Please send me the report by Friday.", "I need the report from you before the end of Friday.", True),
    ("The cat is sleeping on the warm windowsill.", "A cat naps on the sunny window ledge.", True),
    ("The bank approved the loan for the new house.", "We got the mortgage for our new home.", True),
    ("Water boils at one hundred degrees Celsius.", "At 100 degrees Celsius water starts to boil.", True),
    ("The library extended its opening hours.", "The library is now open for longer.", True),
    ("He apologised for being late.", "He said sorry for arriving late.", True),
    ("The train to London leaves at seven in the morning.", "The river flooded the lower part of the town.", False),
    ("Please turn off the lights in the kitchen.", "The bank approved the loan for the new house.", False),
    ("The meeting has been moved to Thursday afternoon.", "The cat is sleeping on the warm windowsill.", False),
    ("My phone battery is almost empty.", "The team won the final in extra time.", False),
    ("He bought a new bicycle for his daughter.", "Water boils at one hundred degrees Celsius.", False),
    ("It is going to rain heavily tomorrow.", "This laptop is light and easy to carry.", False),
    ("The restaurant was too noisy to talk.", "The price of petrol went up again.", False),
    ("She forgot her keys at the office.", "The museum is closed on Mondays.", False),
    ("The software update fixed the crash on startup.", "Children should wear helmets when cycling.", False),
    ("I would like a cup of black coffee.", "Our flight was delayed by three hours.", False),
    ("The doctor told him to rest for a week.", "The library extended its opening hours.", False),
    ("He apologised for being late.", "Please send me the report by Friday.", False),
    ("The bank raised its interest rates.", "We sat on the river bank and watched the boats.", False),
    ("The keys of the piano were yellow with age.", "She forgot her keys at the office.", False),
    ("He played a match of tennis on Sunday.", "He lit the candle with a match.", False),
    ("The light from the window woke me up.", "This laptop is light and easy to carry.", False),
    ("The train to London leaves at seven in the morning.", "They train their dog every morning.", False),
    ("My phone battery is almost empty.", "The army moved its artillery battery up the hill.", False),
    ("The cat is sleeping on the warm windowsill.", "The new tax rules will take effect in spring.", False),
    ("Please turn off the lights in the kitchen.", "Traffic lights at the junction were broken.", False),
    ("It is going to rain heavily tomorrow.", "The king's reign lasted forty years.", False),
    ("The team won the final in extra time.", "Time flies when you are having fun.", False),
    ("Our flight was delayed by three hours.", "The bird's flight over the lake was beautiful.", False),
    ("The restaurant was too noisy to talk.", "She will talk about climate change at the conference.", False),
)

CALIBRATION = (
    "Set a timer for ten minutes.", "What is the weather like in Paris?", "The quick brown fox jumps over the lazy dog.",
    "Remind me to call my sister tonight.", "The stock market fell sharply on Tuesday.", "How do I reset my password?",
    "The hotel room had a view of the sea.", "Add milk and eggs to the shopping list.", "The concert was sold out within minutes.",
    "Scientists discovered a new species of frog.", "Where is the nearest pharmacy?", "The garden needs watering every evening.",
    "Turn the volume up a little.", "The company hired twenty new engineers.", "Snow is expected in the mountains overnight.",
    "The recipe calls for two cups of flour.", "Our neighbours are building an extension.", "Book a table for four at eight.",
    "The bus was full so I walked home.", "Machine learning models can run on small devices.", "The baby finally fell asleep.",
    "Open the garage door.", "The film won three awards last night.", "I lost my umbrella on the tram.",
    "Translate this sentence into French.", "The printer on the second floor is out of paper.", "Is the pharmacy open on Sunday?",
    "The marathon starts at nine o'clock.", "He repaired the fence after the storm.", "Please lock the front door when you leave.",
    "The council approved the new cycle lanes.", "Grandma sent us a postcard from Spain.",
)
