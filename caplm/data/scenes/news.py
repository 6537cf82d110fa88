"""An out-of-domain LM corpus generated in code: news-wire sentences (politics, business,
weather, sport, local and science news), the analogue of the 1 Billion Word benchmark for a
scenes captioner.

Its register and domain differ from the captions (reported speech, past tense, institutions,
numbers, times and places; never "there is a ... above the ..."), but it shares part of the
captions' vocabulary: colour words ("a yellow weather warning", "the red line"), some nouns
("the town square", "the stars", "a fire broke out at a house"), number words, sizes,
directions and function words. Sentences are lower-case ``a-z`` words separated by single
spaces, a pure function of (seed, part, index).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from caplm.data.generated import cached_lines
from caplm.data.scenes.lexicon import Zipf
from caplm.io import stable_hash

NEWS_VERSION = 1  # bump whenever the sentences of a given (seed, part, index) change
PARTS = ("train", "val")
MIN_WORDS, MAX_WORDS = 6, 40


def _z(text: str) -> Zipf:
    return Zipf([t.strip() for t in text.split("|")])


_NUMBERS_SMALL = ("two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
                  "thirty|forty|fifty|sixty|seventy|eighty|ninety|one")  # fmt: skip
SLOTS: dict[str, Zipf] = {
    # ------------------------------------------------------------------ numbers and times
    "num": _z(
        f"{_NUMBERS_SMALL}|{{tens}} {{digit}}|a hundred|{{digit}} hundred|a thousand|"
        "{digit} thousand|{tens} thousand|{digit} million|a million|{digit} billion|"
        "several hundred|several thousand|dozens of|hundreds of|thousands of"
    ),
    "small": _z(_NUMBERS_SMALL),
    "digit": _z("two|three|four|five|six|seven|eight|nine|one"),
    "tens": _z("twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"),
    "percent": _z(
        "{small} percent|{digit} point {digit} percent|half a percent|"
        "a quarter of a percent|{small} per cent"
    ),
    "ordinal": _z("first|second|third|fourth|fifth|sixth|seventh|eighth|tenth|last"),
    "day": _z("monday|tuesday|wednesday|thursday|friday|saturday|sunday"),
    "month": _z(
        "january|february|march|april|may|june|july|august|september|october|november|december"
    ),
    "season": _z("summer|winter|spring|autumn|fall"),
    "time": _z(
        "on {day}|last week|this week|next month|earlier today|late last night|this morning|"
        "on {day} evening|over the weekend|in {month}|at the end of the year|in the {season}|"
        "for the first time in {small} years|since {month}|by the end of the month|"
        "within {small} weeks|on {day} morning|last {season}|next {season}|this year|"
        "last year|in recent weeks|in the coming days|at the weekend|overnight|"
        "later this week|early on {day}|on the night of {day}|in late {month}|in early {month}"
    ),
    # ------------------------------------------------------------------ people and bodies
    "person": _z(
        "the mayor|the prime minister|the finance minister|the health secretary|"
        "the police chief|the head coach|the club captain|the chief executive|"
        "the company chairman|a spokesman for the council|a spokeswoman for the ministry|"
        "local residents|union leaders|opposition leaders|analysts|economists|scientists|"
        "doctors|teachers|farmers|shop owners|investors|officials|witnesses|the fire service|"
        "the coast guard|emergency crews|forecasters|organisers|fans|supporters|the judge|"
        "prosecutors|lawyers for the family|the museum director|the festival director|"
        "the school principal|the governor|the senator|the committee chair|"
        "the central bank governor|the head of the agency|environmental groups|"
        "a senior official|the transport secretary|the opposition leader|the president|"
        "a government spokesman|campaigners|the company|the club|the manager|the minister|"
        "experts|researchers|the report|a police spokesman|a hospital spokeswoman|"
        "the chief constable|the home secretary|the education minister|the foreign minister|"
        "the defence secretary|the environment minister|the chancellor|the deputy mayor|"
        "a union official|a local councillor|the hospital chief|the head teacher|"
        "the airline|the regulator|the bank|the charity|the inquiry|the coroner|"
        "the trade minister|the party leader|the shadow chancellor|an independent review|"
        "the vice president|the general secretary|the chief inspector|the park rangers|"
        "the lifeboat crew|the airport operator|the rail operator|the energy company|"
        "the water company|the landlord|tenants|commuters|motorists|passengers|parents|"
        "pupils|nurses|pilots|dockers|miners|builders|bakers|students|pensioners|"
        "shoppers|tourists|the organisers|the promoters|the producers|the author|"
        "the director|the singer|the actress|the conductor|the curator|the architect"
    ),
    "org": _z(
        "the city council|the regional government|the central bank|the ministry of health|"
        "the transport authority|the national weather service|the red cross|the green party|"
        "the blue star shipping line|the golden arrow bus company|the black tree brewery|"
        "the royal society|the football association|the stock exchange|the port authority|"
        "the water board|the county hospital|the state university|the housing association|"
        "the chamber of commerce|the farmers union|the teachers union|the national museum|"
        "the city orchestra|the heart foundation|the rose garden trust|the parliament|"
        "the senate|the lower house|the upper house|the supreme court|the health service|"
        "the national grid|the railway company|the energy regulator|the tourist board|"
        "the planning committee|the school board|the fire brigade|the coastguard|"
        "the environment agency|the food standards agency|the office for statistics|"
        "the competition authority|the civil aviation authority|the lifeboat institution|"
        "the national trust|the arts council|the sports council|the medical council|"
        "the bar council|the law society|the press association|the broadcasting authority|"
        "the county court|the crown court|the high court|the tax office|the land registry|"
        "the highways agency|the forestry commission|the met office|the royal navy|"
        "the air force|the army|the fire and rescue service|the ambulance service|"
        "the university hospital|the cancer charity|the housing charity|the food bank"
    ),
    "say": _z(
        "said|announced|confirmed|warned|reported|told reporters|stated|claimed|"
        "insisted|denied|revealed|suggested|argued|explained|predicted|added|noted|"
        "told the committee|said in a statement|wrote in a letter|told local radio"
    ),
    # ------------------------------------------------------------------ places
    "town": _z(
        "northfield|eastbrook|westport|riverton|ashford|kingsbridge|millbrook|"
        "stonehaven|oakridge|lakeside|fairview|greenwood|redhill|blackwater|whitecliff|"
        "southam|brightwell|highmoor|elmstead|fernley|castleton|newbury|harlow|"
        "dunmore|bexley|carlow|wexham|portland|marston|tilbury|ambleside|barnford|"
        "calderwood|dalston|eversley|fordham|glenmore|hartfield|ivybridge|jarrow|"
        "kelso|linwood|moorfield|netherby|oldcastle|penrith|quarrybank|rosedale|"
        "saltash|thornbury|upton|valewood|warminster|yarrow|alderney|brookfield|"
        "clifton|dovercourt|edgeworth|foxton|grantham|holloway|inverness|kendal"
    ),
    "region": _z(
        "the north|the south|the east|the west|the north east|the south west|the capital|"
        "the north of the country|the southern coast|the eastern provinces|"
        "the western suburbs|the city centre|the old town|the river valley|"
        "the harbour district|the industrial estate|rural areas|the highlands|the islands|"
        "the border region|coastal areas|the hills|the lowlands|the midlands|{town}|"
        "the area around {town}|the region|the whole country|most of the country"
    ),
    "street": _z(
        "the high street|the main road|crescent road|the ring road|station road|"
        "church street|the market square|the town square|mill lane|park avenue|"
        "the bypass|king street|queen street|bridge street|the harbour road|"
        "star lane|moon street|the old bridge|the motorway|the coast road"
    ),
    "building": _z(
        "house|warehouse|factory|school|shop|restaurant|hotel|church|barn|"
        "block of flats|office block|garage|pub|supermarket|cottage|farmhouse|"
        "bakery|petrol station|scrapyard|recycling centre|cinema|theatre|nightclub|"
        "care home|sports hall|chapel|boathouse|stable|mill|tower block|bungalow"
    ),
    # ------------------------------------------------------------------ business
    "brand": _z(
        "northern|blue|green|red|golden|silver|black|star|diamond|arrow|crescent|"
        "ocean|river|summit|atlas|pioneer|union|royal|national|united|coastal|orange|"
        "purple|heart|tree|sun|eagle|falcon|harbour|iron"
    ),
    "sector": _z(
        "holdings|group|motors|foods|airlines|bank|energy|mining|telecom|insurance|"
        "pharmaceuticals|retail|logistics|media|steel|chemicals|shipping|rail|"
        "software|brewing|farms|homes|construction|capital|partners|industries|"
        "systems|networks|foods|textiles|furniture|cement|paper|glass|aerospace|"
        "shipyards|utilities|water|gas|power|tobacco|fashion|cosmetics|games"
    ),
    "company": _z("{brand} {sector}|{brand} {brand} {sector}|{town} {sector}"),
    "rise": _z(
        "rose|fell|climbed|dropped|slipped|jumped|gained|lost|edged up|edged down|"
        "surged|plunged|recovered"
    ),
    "money": _z("pounds|dollars|euros"),
    "commodity": _z(
        "oil|gold|copper|wheat|coffee|sugar|natural gas|cotton|silver|steel|"
        "timber|rice|cocoa|fuel|electricity|beef|milk|aluminium|nickel|zinc|"
        "platinum|soya beans|corn|barley|wool|rubber|palm oil|iron ore|lithium|"
        "butter|cheese|eggs|potatoes|orange juice|diesel|petrol|coal"
    ),
    "measure": _z(
        "profits|sales|revenue|earnings|orders|exports|imports|output|spending|"
        "investment|borrowing|house prices|rents|wages"
    ),
    # ------------------------------------------------------------------ politics
    "policy_verb": _z(
        "approve|reject|delay|review|cut|raise|extend|scrap|introduce|debate|"
        "fund|suspend|expand|reform|back|block|announce|drop"
    ),
    "policy": _z(
        "a new budget|the tax on fuel|plans for a new bridge|funding for local schools|"
        "the housing bill|a ban on plastic bags|the speed limit on the ring road|"
        "spending on hospitals|the minimum wage|a new airport runway|rules on parking|"
        "the health reform|pensions for older workers|a small rise in council tax|"
        "a large package of measures|grants for small businesses|the energy price cap|"
        "a new rail line|free school meals|the green energy plan|a tax on sugar|"
        "new homes on the edge of {town}|the closure of the old hospital|"
        "a new law on data|cuts to the police budget|the trade agreement|"
        "the fishing quota|a public inquiry|the planning rules|the new stadium"
    ),
    "party": _z(
        "the governing party|the opposition|the green party|the liberal party|"
        "the labour party|the conservatives|the centre party|the red alliance|"
        "the blue coalition|independent candidates"
    ),
    # ------------------------------------------------------------------ weather
    "weather": _z(
        "heavy rain|light showers|strong winds|thick fog|freezing temperatures|"
        "snow on high ground|thunderstorms|bright sunshine|clear skies|a hard frost|hail|"
        "a heatwave|gale force winds|flooding|sleet|drizzle|black ice|icy roads|"
        "high pressure|a band of rain|scattered showers|dense cloud|warm sunshine|"
        "lightning strikes|torrential downpours|a cold snap|mild weather"
    ),
    "warning_colour": _z("yellow|orange|red|amber"),
    "temp": _z(
        "{small} degrees|minus {digit} degrees|around {small} degrees|"
        "a high of {small} degrees|a low of {digit} degrees"
    ),
    # ------------------------------------------------------------------ sport
    "team_noun": _z(
        "united|city|rovers|wanderers|rangers|athletic|stars|hearts|lions|eagles|"
        "tigers|wolves|bears|sharks|giants|kings|arrows|crusaders|town|county|"
        "albion|harriers|dynamos|saints|pirates"
    ),
    "team": _z("{town} {team_noun}|the {town} {team_noun}|{town}"),
    "beat": _z("beat|defeated|lost to|drew with|thrashed|edged past|overcame|held"),
    "cup": _z(
        "the cup|the league title|the championship|the regional trophy|the final|"
        "the silver cup|the gold medal|the national league|the play off final"
    ),
    "player": _z(
        "the striker|the young midfielder|the captain|the veteran defender|"
        "the new signing|the goalkeeper|the winger|the star forward|the substitute|"
        "the champion|the sprinter|the world number one|the home favourite"
    ),
    "manner": _z(
        "well|poorly|bravely|badly|brilliantly|with great spirit|without energy|"
        "far better than expected"
    ),
    "half": _z("first|second"),
    # ------------------------------------------------------------------ local and culture
    "size": _z("small|large|huge|major|minor|big|massive|tiny"),
    "vehicle": _z("car|lorry|bus|van|tractor|motorbike|taxi|delivery van|train|tram"),
    "event": _z(
        "flower show|food festival|summer fair|book festival|music festival|"
        "christmas market|farmers market|street parade|boat race|film festival|"
        "art fair|marathon|fireworks display|county show|jazz festival"
    ),
    "feature": _z(
        "live music|a large craft market|fireworks|food stalls|a fun run|"
        "a parade of vintage cars|talks by local authors|a giant ferris wheel|"
        "rides for children|a display of rare flowers|a fish market|"
        "a competition for the biggest pumpkin"
    ),
    "problem": _z(
        "noise|litter|traffic|parking|flooding|potholes|speeding cars|"
        "dangerous driving|antisocial behaviour|a lack of buses|rising rents|"
        "rats|broken street lights|dog fouling"
    ),
    "landmark": _z(
        "the town hall|the library|the railway station|the old mill|the castle|"
        "the harbour|the cathedral|the war memorial|the park|the leisure centre|"
        "the market hall|the bus station|the clock tower|the bridge"
    ),
    "art": _z(
        "paintings|sculptures|photographs|old maps|ancient coins|modern prints|"
        "stained glass|roman pottery|textiles|medieval manuscripts"
    ),
    "finding": _z(
        "regular exercise lowers the risk of heart disease|children who read every day do "
        "better at school|the number of bees has fallen sharply|sea levels are rising faster "
        "than expected|a common drug may slow memory loss|the ice in the north is thinning|"
        "eating more fibre is good for the heart|coffee drinkers live slightly longer|"
        "the moon was formed by a huge collision|a distant star has at least two planets|"
        "fish stocks in the north sea are recovering|trees in cities reduce summer heat|"
        "most people sleep less than they should"
    ),
}

TEMPLATES: dict[str, Zipf] = {
    "politics": _z(
        "{org} voted to {policy_verb} {policy} {time}|"
        "{person} {say} that {org} would {policy_verb} {policy}|"
        "{party} won {num} seats in the {ordinal} round of voting|"
        "lawmakers voted {small} to {small} to {policy_verb} {policy}|"
        "{person} {say} the government had no plans to {policy_verb} {policy}|"
        "{org} is expected to {policy_verb} {policy} {time}|"
        "the vote on {policy} was delayed after {person} raised concerns|"
        "{party} said it would {policy_verb} {policy} if it won the election|"
        "{person} {say} {time} that talks on {policy} had broken down|"
        "a survey of {num} voters found that most support {policy}|"
        "protesters gathered outside {landmark} {time} to oppose {policy}|"
        "{person} resigned {time} after a row over {policy}|"
        "{person} left the {party} {time} saying it had moved too far to the left|"
        "campaigners say the right to protest outside {landmark} must be protected|"
        "the new leader of {party} is on the right of the party"
    ),
    "business": _z(
        "shares in {company} {rise} {percent} {time}|"
        "{company} reported a {size} rise in {measure} for the {ordinal} quarter|"
        "{company} said its {measure} {rise} by {percent} as demand weakened|"
        "the price of {commodity} {rise} to its highest level in {small} years|"
        "the price of {commodity} {rise} to its lowest level since {month}|"
        "inflation {rise} to {percent} in {month} according to official figures|"
        "the central bank kept interest rates at {percent} {time}|"
        "{company} said it would cut {num} jobs at its plant in {town}|"
        "{company} agreed to buy {company} for {num} {money}|"
        "the stock market closed in the red {time} after a week of losses|"
        "after two bad years {company} is back in the black|"
        "unemployment in {region} fell to {percent} {time}|"
        "{company} plans to open {small} new stores in {region} {time}|"
        "{person} {say} that {measure} would recover {time}|"
        "house prices in {region} {rise} by {percent} over the past year"
    ),
    "weather": _z(
        "forecasters expect {weather} in {region} {time}|"
        "a {warning_colour} weather warning for {weather} is in place for {region} until {day}|"
        "temperatures will reach {temp} in {region} {time}|"
        "{weather} is likely across {region} with {weather} later in the day|"
        "the national weather service warned of {weather} on the roads {time}|"
        "{region} will see {weather} while {region} stays dry|"
        "after a week of {weather} the weekend should bring {weather}|"
        "the moon will be full on {day} and skies should be clear enough to see it|"
        "a large storm is moving east across the sea and will reach {region} {time}|"
        "drivers in {region} were told to expect {weather} and long delays|"
        "{month} was the wettest month on record in {region}|"
        "temperatures will stay above average in {region} {time}|"
        "temperatures fell below freezing in {region} {time}|"
        "the river rose above its banks near {town} after {weather}"
    ),
    "sport": _z(
        "{team} {beat} {team} {small} {small} {time}|"
        "{player} scored {small} goals as {team} won {cup}|"
        "the {team} coach said his side had played {manner} in the {half} half|"
        "{team} moved up to {ordinal} place in the league after a win over {team}|"
        "{team} will face {team} in {cup} {time}|"
        "{player} was sent off in the {half} half and {team} lost {small} to {small}|"
        "{team} have signed {player} from {team} for {num} {money}|"
        "{person} {say} that {player} would miss the next {small} games with an injury|"
        "a crowd of {num} watched {team} beat {team} in {cup}|"
        "{team} have not won at home since {month}|"
        "the star of the match was {player} who scored twice in the {half} half"
    ),
    "local": _z(
        "police said a {size} fire broke out at a {building} on {street} {time}|"
        "a {vehicle} crashed into a tree on {street} {time} and the road was closed|"
        "the annual {event} returns to {town} this {season} with {feature}|"
        "residents have complained about {problem} near {landmark}|"
        "volunteers planted {num} trees in the park near {landmark} {time}|"
        "the old oak tree in the town square will be cut down {time}|"
        "a new playground will open next to {landmark} {time}|"
        "the {event} attracted {num} visitors {time}|"
        "fishermen in {town} say catches of fish have fallen for {small} years|"
        "a large crowd gathered outside {landmark} {time}|"
        "the house on {street} was badly damaged by {weather}|"
        "{street} will be closed for {small} weeks while crews repair the water main|"
        "the council has approved plans for {num} new homes near {landmark}|"
        "a small boat with {small} people on board was rescued off the coast {time}|"
        "police are asking anyone who saw a {vehicle} on {street} {time} to come forward|"
        "the red line will not run between {town} and {town} {time}|"
        "the number four bus will stop at {landmark} from {day}|"
        "traffic was left at a standstill on {street} after {cause}|"
        "drivers should turn left at {landmark} while {street} is closed"
    ),
    "science": _z(
        "researchers found that {finding}|"
        "a study of {num} patients suggests that {finding}|"
        "astronomers said a bright new star had appeared near the moon {time}|"
        "scientists at the state university say {finding}|"
        "the space agency will launch {small} satellites {time}|"
        "the museum has opened an exhibition of {art} from {region}|"
        "the film won {small} awards at the {event} {time}|"
        "the band will play {small} concerts in {region} {time}|"
        "{person} {say} that {finding}|"
        "a rare black bird was seen in {region} for the first time in {small} years|"
        "the exhibition of {art} at the national museum will close {time}"
    ),
}
SLOTS.update(
    {
        "crime": _z(
            "burglary|robbery|arson attack|car theft|assault|fraud|shoplifting|"
            "break in|armed robbery|vandalism|cyber attack|pickpocketing|forgery|"
            "drink driving offence|hit and run|smuggling|money laundering"
        ),
        "sentence": _z(
            "jailed for {small} years|fined {num} {money}|given a suspended sentence|"
            "ordered to do {num} hours of community work|cleared of all charges|"
            "banned from driving for {small} years|released on bail|"
            "remanded in custody until {month}"
        ),
        "accused": _z(
            "a man from {town}|a woman from {town}|a former teacher|a local builder|"
            "two brothers|a company director|a taxi driver|a teenager|a pensioner|"
            "a former banker|a care worker|three men|a gang of four"
        ),
        "illness": _z(
            "flu|measles|heart disease|diabetes|asthma|cancer|a stomach bug|"
            "whooping cough|food poisoning|covid|hay fever|a rare infection|malaria"
        ),
        "health_thing": _z(
            "waiting times|bed shortages|the number of nurses|ambulance delays|"
            "cancer screening|mental health services|dental care|the cost of drugs|"
            "vaccination rates|care for older people"
        ),
        "subject": _z(
            "maths|science|english|history|music|art|languages|computing|geography|"
            "sport|reading|writing|physics|chemistry|biology"
        ),
        "school_thing": _z(
            "exam results|class sizes|the school day|homework|free meals|"
            "teacher pay|the new curriculum|school buses|university fees|"
            "the summer holidays|reading standards"
        ),
        "transport": _z(
            "trains|buses|flights|ferries|trams|the night bus|the airport express|"
            "the coastal railway|the number four bus|the ring road|the tunnel|"
            "the new cycle lanes|the harbour ferry|the sleeper train"
        ),
        "delay": _z(
            "cancelled|delayed|suspended|diverted|cut back|replaced by buses|"
            "running late|running normally again"
        ),
        "cause": _z(
            "a strike|a signal failure|flooding|snow|high winds|a power cut|"
            "engineering work|a shortage of staff|a broken down train|fog|an accident|"
            "a fire near the line|a security alert|a burst water main"
        ),
        "animal": _z(
            "otters|beavers|red kites|golden eagles|seals|dolphins|badgers|hedgehogs|"
            "foxes|wild boar|salmon|bats|swallows|bees|butterflies|frogs|red squirrels|"
            "deer|puffins|owls|wolves|lynx|whales|storks"
        ),
        "habitat": _z(
            "the marshes|the river|the forest|the moors|the estuary|the woods|the lake|"
            "the nature reserve|the coast|the hills|the city parks|the farmland"
        ),
        "gadget": _z(
            "phone|laptop|tablet|smart watch|electric car|games console|camera|"
            "robot vacuum|drone|television|smart speaker|electric bike|headset"
        ),
        "tech_org": _z(
            "the tech giant|the phone maker|the chip maker|the social network|"
            "the search company|the start up|the software firm|the games studio|"
            "the carmaker|the online retailer"
        ),
        "work": _z(
            "film|novel|album|play|opera|musical|documentary|exhibition|series|"
            "ballet|symphony|memoir|comedy show|poetry collection"
        ),
        "genre": _z(
            "crime|science fiction|historical|romantic|horror|comedy|war|family|"
            "fantasy|mystery|coming of age|political"
        ),
        "praise": _z(
            "a triumph|a disappointment|a masterpiece|a slow burner|a crowd pleaser|"
            "an instant classic|a brave failure|a surprise hit|a must see|a flop"
        ),
        "age": _z("{tens}|{tens} {digit}|a hundred|{tens} one"),
        "career": _z(
            "a teacher|a doctor|a farmer|an engineer|a nurse|a painter|a writer|"
            "a footballer|a singer|a pilot|a judge|a baker|a fisherman|a builder|"
            "a councillor|an architect|a scientist|a shopkeeper|a postman|a librarian"
        ),
        "destination": _z(
            "the coast|the mountains|the lakes|the islands|the capital|"
            "the south of france|the mediterranean|the alps|the highlands|"
            "the national parks|seaside towns|the countryside"
        ),
    }
)
TEMPLATES.update(
    {
        "courts": _z(
            "{accused} was {sentence} for {crime} {time}|"
            "police are investigating a {crime} at a {building} on {street}|"
            "{accused} appeared in court {time} charged with {crime}|"
            "the trial of {accused} accused of {crime} will begin in {month}|"
            "{crime} rose by {percent} in {region} last year according to {org}|"
            "{person} {say} that {accused} had been {sentence}|"
            "detectives have arrested {accused} after a {crime} in {town}"
        ),
        "health": _z(
            "cases of {illness} have risen in {region} {time}|"
            "{org} warned that {health_thing} had got worse {time}|"
            "doctors in {region} say {health_thing} is the biggest problem they face|"
            "a new clinic for patients with {illness} will open in {town} {time}|"
            "{person} {say} that {health_thing} would improve by {month}|"
            "the hospital in {town} has {small} fewer beds than a year ago|"
            "more than {num} people were treated for {illness} {time}"
        ),
        "education": _z(
            "{school_thing} will change from {month} {person} {say}|"
            "pupils in {region} did better in {subject} this year|"
            "the number of students studying {subject} has fallen by {percent}|"
            "teachers in {town} voted to strike over {school_thing}|"
            "{org} said {school_thing} had improved in most schools|"
            "a new school for {num} pupils will open in {town} {time}"
        ),
        "transport": _z(
            "{transport} between {town} and {town} were {delay} {time} because of {cause}|"
            "{transport} will be {delay} {time} due to {cause}|"
            "passengers faced long delays after {cause} at the main station|"
            "fares on {transport} will rise by {percent} from {month}|"
            "{org} said {transport} should be running normally by {day}|"
            "a new bridge across the river at {town} will open {time}"
        ),
        "nature": _z(
            "{animal} have returned to {habitat} for the first time in {small} years|"
            "volunteers counted {num} {animal} on {habitat} {time}|"
            "the number of {animal} in {region} has fallen by {percent}|"
            "{org} wants to bring {animal} back to {habitat}|"
            "a rare sighting of {animal} near {town} has delighted local people|"
            "campaigners say new homes would harm {animal} living in {habitat}"
        ),
        "technology": _z(
            "{tech_org} unveiled a new {gadget} {time}|"
            "{tech_org} said sales of its {gadget} {rise} by {percent}|"
            "{tech_org} was fined {num} {money} by {org}|"
            "the new {gadget} will go on sale in {month} for {num} {money}|"
            "{tech_org} plans to hire {num} workers in {town}|"
            "a fault in the {gadget} has led to a recall of {num} devices"
        ),
        "culture": _z(
            "the new {genre} {work} is {praise} say critics|"
            "the {work} opens at the city theatre {time}|"
            "the {genre} {work} won the top prize at the {event}|"
            "{person} {say} that the {work} had sold {num} copies|"
            "tickets for the {work} sold out in {small} hours|"
            "the {work} about a family in {town} is {praise}"
        ),
        "people": _z(
            "tributes have been paid to {career} from {town} who has died aged {age}|"
            "{career} from {town} has been given an award for services to the community|"
            "{career} from {town} celebrated her {ordinal} birthday with a party at {landmark}|"
            "{career} who grew up in {town} has written a book about the {event}|"
            "the family of {career} from {town} have thanked the people who helped find him"
        ),
        "travel": _z(
            "more people are taking holidays in {destination} this {season}|"
            "hotels in {destination} say bookings are up by {percent}|"
            "flights to {destination} will cost more from {month}|"
            "tourists in {destination} were warned about {weather} {time}"
        ),
    }
)
FRAMES = _z(
    "{s}|{s}|{s} {time}|according to {org} {s}|{s} {person} {say}|"
    "{person} {say} that {s}|in {region} {s}|{s} but {s}|{s} while {s}"
)
TOPICS = Zipf(["local", "politics", "business", "sport", "weather", "courts", "health",
               "transport", "science", "culture", "education", "nature", "technology",
               "people", "travel"])  # fmt: skip

_SLOT = re.compile(r"\{(\w+)\}")


def _compile(text: str) -> tuple:
    """A template as alternating literal text and slot names."""
    return tuple(_SLOT.split(text))


_COMPILED: dict[str, tuple] = {}


def _expand(text: str, rng: random.Random, depth: int = 0) -> str:
    parts = _COMPILED.get(text)
    if parts is None:
        parts = _COMPILED[text] = _compile(text)
    if len(parts) == 1:
        return text
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 0:
            out.append(part)
        else:
            if depth > 8:
                raise ValueError(f"template recursion too deep at {{{part}}}")
            out.append(_expand(SLOTS[part].pick(rng), rng, depth + 1))
    return "".join(out)


def _sentence(rng: random.Random) -> str:
    frame = FRAMES.pick(rng)
    parts = []
    for k, part in enumerate(_SLOT.split(frame)):
        if k % 2 == 0:
            parts.append(part)
        elif part == "s":
            parts.append(_expand(TEMPLATES[TOPICS.pick(rng)].pick(rng), rng))
        else:
            parts.append(_expand(SLOTS[part].pick(rng), rng))
    return _articles(" ".join("".join(parts).split()))


_A_AN = re.compile(r"\b(a|an) (?=(\w))")


def _articles(text: str) -> str:
    return _A_AN.sub(lambda m: "an " if m.group(2) in "aeiou" else "a ", text)


def news_sentence(seed: int, part: str, index: int) -> str:
    """The ``index``-th sentence of a part: words of ``a-z`` separated by single spaces."""
    rng = random.Random(f"scenes-news/{seed}/{part}/{index}")
    for _ in range(20):
        text = _sentence(rng)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text
    return text


def news_sentences(
    seed: int, num: int, part: str = "train", cache_dir: str | Path | None = None
) -> list[str]:
    """``num`` news sentences of a part ("train": a language model's training text, "val":
    its validation text; disjoint streams); with ``cache_dir``, generated once and kept in
    ``<cache_dir>/scenes/news-<key>.txt`` (one sentence a line). The i-th sentence does not
    depend on ``num``."""
    if part not in PARTS:
        raise ValueError(f"part = {part!r}: must be one of {PARTS}")
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
        raise ValueError(f"num = {num!r}: must be an integer, 0 or more")
    path = None
    if cache_dir is not None:
        key = stable_hash({"news_version": NEWS_VERSION, "seed": seed, "part": part, "num": num})
        path = Path(cache_dir) / "scenes" / f"news-{key}.txt"
    return cached_lines(
        path, num, lambda: [news_sentence(seed, part, i) for i in range(num)], "news sentences"
    )
