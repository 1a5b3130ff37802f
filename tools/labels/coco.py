"""COCO's 80 object classes, in the order the object detector (CenterNet) outputs them, each with
the taxonomy label it reports: a label the ImageNet classes already have (COCO's "cow" is the
taxonomy's Cattle, "sports ball" its Ball) or a concept of concepts.py (Giraffe, Fork, Stop Sign).
One label per thing, so that a cup the classifier and the detector both see is one `Cup`.
"""

COCO_LABELS = [
    "Person", "Bicycle", "Car", "Motorcycle", "Airplane", "Bus", "Train", "Truck", "Boat",
    "Traffic Light", "Fire Hydrant", "Stop Sign", "Parking Meter", "Bench", "Bird", "Cat", "Dog",
    "Horse", "Sheep", "Cattle", "Elephant", "Bear", "Zebra", "Giraffe", "Backpack", "Umbrella",
    "Handbag", "Tie", "Suitcase", "Frisbee", "Ski", "Snowboard", "Ball", "Kite", "Baseball Bat",
    "Baseball Glove", "Skateboard", "Surfboard", "Tennis Racket", "Bottle", "Wine Glass", "Cup",
    "Fork", "Knife", "Spoon", "Bowl", "Banana", "Apple", "Sandwich", "Orange", "Broccoli",
    "Carrot", "Hot Dog", "Pizza", "Donut", "Cake", "Chair", "Couch", "Potted Plant", "Bed",
    "Dining Table", "Toilet", "Television", "Laptop", "Mouse", "Remote Control",
    "Computer Keyboard", "Mobile Phone", "Microwave", "Oven", "Toaster", "Sink", "Refrigerator",
    "Book", "Clock", "Vase", "Scissors", "Teddy Bear", "Hair Dryer", "Toothbrush",
]

assert len(COCO_LABELS) == 80 and len(set(COCO_LABELS)) == 80
